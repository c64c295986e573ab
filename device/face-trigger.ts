import type { Terminal } from './terminal.js';
import type { Policy } from './policy.js';

/**
 * Face in view: in face-only / card-or-face modes the terminal looks at the camera while idle.
 * After a punch it pauses (cooldownMs) so the person walking through is not punched twice.
 */
export function startFaceTrigger(
  terminal: Terminal,
  policy: () => Policy,
  opts: { scanMs: number; cooldownMs: number },
  action: () => 'in' | 'out' | undefined = () => undefined,
  onError: (err: unknown) => void = () => undefined,
): () => void {
  if (opts.scanMs <= 0) return () => undefined;
  let pausedUntil = 0;
  // A face already punched (debounced) pauses the scan too: the person still in view is not
  // told "already recorded" at every look.
  const onIgnored = (i: { trigger: string; reason: string }) => {
    if (i.trigger === 'face' && i.reason === 'debounced') pausedUntil = Date.now() + opts.cooldownMs;
  };
  terminal.on('ignored', onIgnored);
  const timer = setInterval(() => {
    const c = policy().credentials;
    if ((c !== 'face-only' && c !== 'card-or-face') || terminal.state === 'busy' || Date.now() < pausedUntil) return;
    terminal.onFace(action()).then(
      (p) => {
        if (p) pausedUntil = Date.now() + opts.cooldownMs;
      },
      // A fault in one look (engine error) must not end the process; the next scan tries again.
      (err: unknown) => onError(err),
    );
  }, opts.scanMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    terminal.off('ignored', onIgnored);
  };
}
