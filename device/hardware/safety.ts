/**
 * Drives outputs to their safe state when the process ends: normal exit, SIGTERM/SIGINT
 * (systemd stop), and uncaught exceptions. A SIGKILL or power loss cannot be caught; for those,
 * the next start drives outputs safe before anything else, and systemd's ExecStopPost runs
 * `clockface hw reset-outputs` (the kernel keeps sysfs GPIO values after a process dies).
 */
export interface SafeStateTarget {
  safe(): void;
}

export function installSafeStateHooks(target: SafeStateTarget): () => void {
  const makeSafe = (): void => {
    try {
      target.safe();
    } catch {
      /* nothing better to do on the way out; the next start resets again */
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    makeSafe();
    // When nobody else handles the signal, behave like the default: end the process.
    if (process.listenerCount(signal) === 1) process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', makeSafe);
  process.on('uncaughtExceptionMonitor', makeSafe);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('exit', makeSafe);
    process.off('uncaughtExceptionMonitor', makeSafe);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
