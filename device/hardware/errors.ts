import { userInfo } from 'node:os';

/**
 * Errors a facilities person can act on: which part, which device path, what went wrong and
 * which fix to try (most often: add the service user to a group).
 */
export type HardwarePart = 'camera' | 'reader' | 'gpio' | 'wiegand';

/** The Unix group that owns each kind of device node on Raspberry Pi OS / Debian. */
export const DEVICE_GROUP: Record<HardwarePart, string> = {
  camera: 'video',
  reader: 'dialout',
  gpio: 'gpio',
  wiegand: 'gpio',
};

export class HardwareError extends Error {
  override readonly name = 'HardwareError';
  constructor(
    readonly part: HardwarePart,
    message: string,
    /** What to try on site. */
    readonly fix: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Turns an errno failure opening `path` into a HardwareError that names the group to join. */
export function explainAccessError(part: HardwarePart, path: string, err: unknown): HardwareError {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? codeFromMessage(String(e?.message ?? err));
  const group = DEVICE_GROUP[part];
  const user = currentUser();
  if (code === 'EACCES' || code === 'EPERM') {
    return new HardwareError(part, `${part}: permission denied on ${path}`, `add ${user} to group ${group} (sudo usermod -aG ${group} ${user}) and restart the service`, code);
  }
  if (code === 'ENOENT') {
    return new HardwareError(part, `${part}: ${path} does not exist`, fixForMissing(part, path), code);
  }
  if (code === 'EBUSY') {
    return new HardwareError(part, `${part}: ${path} is in use by another process`, `stop the other program using ${path} (see: fuser -v ${path})`, code);
  }
  return new HardwareError(part, `${part}: cannot open ${path}: ${e?.message ?? String(err)}`, `check the wiring and that ${path} is the right device`, code);
}

/** The account this process really runs as (not $USER, which sudo and systemd may leave stale). */
function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'the service user';
  }
}

function fixForMissing(part: HardwarePart, path: string): string {
  switch (part) {
    case 'reader':
      return `check the reader's USB/serial cable and the configured path (ls -l /dev/serial/by-id/); ${path} is not there`;
    case 'camera':
      return `check the camera cable and that the camera is enabled (rpicam-hello --list-cameras, or ls /dev/video*)`;
    default:
      return `check hardware.pins and hardware.gpio.sysfsBase (Raspberry Pi kernels from 6.6 number GPIOs from the chip base: ls /sys/class/gpio); with no /sys/class/gpio at all, use a kernel with CONFIG_GPIO_SYSFS, or hardware.gpio.driver "simulator" off the Pi`;
  }
}

const MESSAGE_CODES: Array<[RegExp, string]> = [
  [/\b(EACCES|EPERM|ENOENT|EBUSY)\b/, '$1'],
  [/permission denied/i, 'EACCES'],
  [/no such file or directory/i, 'ENOENT'],
  [/resource busy/i, 'EBUSY'],
];

function codeFromMessage(message: string): string | undefined {
  // serialport and onoff sometimes put the errno only in the message text.
  for (const [re, code] of MESSAGE_CODES) {
    const m = re.exec(message);
    if (m) return code === '$1' ? m[1] : code;
  }
  return undefined;
}
