import { z } from 'zod';

/**
 * The hardware section of a terminal's config: contract between provisioning, which writes it
 * into a device's bundle (hardware profiles) and checks it, and the terminal, whose drivers
 * read it (device/hardware). The terminal service embeds HardwareConfig under its own key
 * ("hardware"); `clockface hw` reads the same section from the same file. Every part picks a
 * real driver or a simulator; pins are BCM numbers as the kernel's sysfs GPIO interface knows them.
 */
const Pin = z.number().int().min(0).max(1023);
const Level = z.union([z.literal(0), z.literal(1)]);

export const CameraConfig = z
  .object({
    /** rpicam: Pi camera via rpicam-vid (libcamera-vid fallback); v4l2: USB webcam via ffmpeg; replay: JPEG folder or MJPEG file. */
    driver: z.enum(['rpicam', 'v4l2', 'replay', 'none']).default('none'),
    width: z.number().int().min(64).max(4096).default(640),
    height: z.number().int().min(48).max(4096).default(480),
    fps: z.number().min(1).max(120).default(30),
    /** V4L2 device node for the v4l2 driver. */
    device: z.string().default('/dev/video0'),
    /** Folder of .jpg files or an .mjpeg file, looped at `fps`, for the replay driver. */
    replayPath: z.string().optional(),
    /** No frame for this long means the camera process hangs: it is killed and restarted. */
    stallTimeoutMs: z.number().int().min(100).default(3000),
    restartMinMs: z.number().int().min(10).default(250),
    restartMaxMs: z.number().int().min(10).default(10_000),
    /**
     * How the rpicam driver takes stills: through node-libcamera (libcamera-still), falling back
     * to spawning rpicam-still/libcamera-still directly; or directly only ("spawn").
     */
    stillVia: z.enum(['node-libcamera', 'spawn']).default('node-libcamera'),
    /** Full-resolution still size for enrollment photos. */
    stillWidth: z.number().int().min(64).max(9152).default(2304),
    stillHeight: z.number().int().min(48).max(6944).default(1296),
  })
  .strict()
  .refine((c) => c.driver !== 'replay' || c.replayPath !== undefined, { message: 'camera.replayPath is required for the replay driver', path: ['replayPath'] });

export const ReaderConfig = z
  .object({
    driver: z.enum(['serial', 'simulator', 'none']).default('none'),
    /** Serial device, e.g. /dev/ttyS0 or /dev/serial/by-id/usb-...; the service user must be in group dialout. */
    path: z.string().optional(),
    baudRate: z.number().int().positive().default(9600),
    /** em4100: RDM6300-style STX + 10 hex + checksum + ETX; line: one card number per CR/LF-terminated line. */
    protocol: z.enum(['em4100', 'line']).default('em4100'),
    /** How a line reader prints numbers. */
    lineFormat: z.enum(['hex', 'decimal']).default('decimal'),
    /** The same card read again within this window is the same presentation. */
    repeatWindowMs: z.number().int().min(0).default(1500),
    reconnectMinMs: z.number().int().min(10).default(250),
    reconnectMaxMs: z.number().int().min(10).default(5000),
    /** Simulator only: cards presented one after another every `simulatedIntervalMs` (demo feed). */
    simulatedCards: z.array(z.string().regex(/^[0-9A-Fa-f]{1,16}$/)).default([]),
    simulatedIntervalMs: z.number().int().min(50).default(5000),
    /**
     * Simulator only: a unix socket the simulated reader listens on; bytes written to it are
     * what the reader's serial line would carry (per `protocol`), so another process (the demo,
     * a test) can badge and key a PIN without serial hardware or socat.
     */
    simulatedFeed: z.string().optional(),
  })
  .strict()
  .refine((c) => c.driver !== 'serial' || c.path !== undefined, { message: 'reader.path is required for the serial driver', path: ['path'] });

export const RelayConfig = z
  .object({
    pulseMs: z.number().int().min(50).default(3000),
    /** Longest pulse anyone may ask for; longer requests are cut to this. */
    maxPulseMs: z.number().int().min(50).max(60_000).default(15_000),
    /** The relay coil is energised when the pin is low (many opto-isolated relay boards). */
    activeLow: z.boolean().default(false),
    /**
     * fail-secure: a strike that is locked without power; rest = de-energised, open = energised.
     * fail-safe: a maglock that is released without power; rest = energised, open = de-energised.
     */
    mode: z.enum(['fail-secure', 'fail-safe']).default('fail-secure'),
  })
  .strict();

export const InputsConfig = z
  .object({
    debounceMs: z.number().int().min(0).max(1000).default(30),
    /** Level the door contact reads while the door is open. */
    doorOpenLevel: Level.default(1),
    /** Level the request-to-exit button reads while pressed. */
    rexActiveLevel: Level.default(0),
    /** Level the tamper switch reads when the case is opened. */
    tamperActiveLevel: Level.default(1),
    /** Door open longer than this after a granted entry raises door-held-open. */
    heldOpenMs: z.number().int().min(100).default(30_000),
    /** After the relay pulse ends, the door may still be opened this long without counting as forced. */
    openGraceMs: z.number().int().min(0).default(2000),
  })
  .strict();

export const WiegandConfig = z
  .object({
    enabled: z.boolean().default(false),
    format: z.union([z.literal(26), z.literal(34)]).default(26),
    /** Facility code for 26-bit frames (0-255); unset: bits 23-16 of the card number, as EM readers do. */
    facilityCode: z.number().int().min(0).max(255).optional(),
    /** Data-line low pulse width and bit-to-bit period, as the panel's manual states them. */
    pulseUs: z.number().int().min(20).max(500).default(50),
    intervalUs: z.number().int().min(200).max(20_000).default(2000),
    /** Silence kept between two frames: a panel ends a frame after ~20-25 ms without a bit, so two grants in a row must not run together. */
    frameGapMs: z.number().int().min(10).max(1000).default(50),
  })
  .strict();

export const PinMap = z
  .object({
    relay: Pin.optional(),
    greenLed: Pin.optional(),
    redLed: Pin.optional(),
    buzzer: Pin.optional(),
    doorContact: Pin.optional(),
    requestToExit: Pin.optional(),
    tamper: Pin.optional(),
    wiegandD0: Pin.optional(),
    wiegandD1: Pin.optional(),
  })
  .strict()
  .refine(
    (pins) => {
      const used = Object.values(pins).filter((p): p is number => p !== undefined);
      return new Set(used).size === used.length;
    },
    { message: 'two parts share one GPIO pin' },
  );

export const GpioConfig = z
  .object({
    driver: z.enum(['onoff', 'simulator']).default('simulator'),
    /**
     * onoff only: added to every pin number to get the sysfs GPIO number. Raspberry Pi kernels
     * from 6.6 number the header GPIOs from the chip base (often 512; see /sys/class/gpio/gpiochip*).
     */
    sysfsBase: z.number().int().min(0).max(4096).default(0),
    /** Simulator only: JSON-lines file every level change is appended to (survives a crash). */
    recordFile: z.string().optional(),
    /** LEDs and buzzer drive their pin low to light/sound. */
    ledsActiveLow: z.boolean().default(false),
    buzzerActiveLow: z.boolean().default(false),
  })
  .strict();

export const HardwareConfig = z
  .object({
    camera: CameraConfig.prefault({ driver: 'none' }),
    reader: ReaderConfig.prefault({ driver: 'none' }),
    gpio: GpioConfig.prefault({ driver: 'simulator' }),
    pins: PinMap.prefault({}),
    relay: RelayConfig.prefault({}),
    inputs: InputsConfig.prefault({}),
    wiegand: WiegandConfig.prefault({}),
  })
  .strict()
  .superRefine((hw, ctx) => {
    if (hw.wiegand.enabled && (hw.pins.wiegandD0 === undefined || hw.pins.wiegandD1 === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['pins'], message: 'wiegand.enabled needs pins.wiegandD0 and pins.wiegandD1' });
    }
  });

export type HardwareConfig = z.infer<typeof HardwareConfig>;
export type CameraConfig = z.infer<typeof CameraConfig>;
export type ReaderConfig = z.infer<typeof ReaderConfig>;
export type RelayConfig = z.infer<typeof RelayConfig>;
export type InputsConfig = z.infer<typeof InputsConfig>;
export type WiegandConfig = z.infer<typeof WiegandConfig>;
export type PinMap = z.infer<typeof PinMap>;
export type GpioConfig = z.infer<typeof GpioConfig>;
