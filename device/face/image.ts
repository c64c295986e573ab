import sharp, { type Metadata } from 'sharp';
import { FaceInputError } from './errors.js';

/**
 * Turns untrusted image bytes into RGB pixels the models can read. The header is checked
 * before any pixel is decoded, so a decompression bomb (a small file claiming 30000x30000)
 * costs a header parse, not gigabytes. EXIF orientation is applied; everything else of the
 * file's metadata is dropped.
 */
export interface DecodedImage {
  rgb: Buffer;
  width: number;
  height: number;
  /** Scale from these pixels back to the original image (>= 1 when downsized). */
  scale: number;
  originalWidth: number;
  originalHeight: number;
}

export interface DecodeLimits {
  /** Largest accepted image, in pixels (header-declared). */
  maxPixels: number;
  /** Longest side handed to the detector; larger images are downsized first. */
  maxSide: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxPixels: 40_000_000, maxSide: 640 };
const FORMATS = new Set(['jpeg', 'png', 'webp']);

export async function decodeImage(bytes: Buffer, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Promise<DecodedImage> {
  if (bytes.length === 0) throw new FaceInputError('empty', 'the image is empty (0 bytes)');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new FaceInputError('unreadable', 'not a readable image (expected JPEG, PNG or WebP)');
  }
  if (!meta.format || !FORMATS.has(meta.format)) {
    throw new FaceInputError('unsupported-format', `unsupported image format ${meta.format ?? 'unknown'} (expected JPEG, PNG or WebP)`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w <= 0 || h <= 0) throw new FaceInputError('unreadable', 'the image header declares no size');
  if (w * h > limits.maxPixels) {
    throw new FaceInputError('too-large', `image of ${w}x${h} pixels exceeds the limit of ${limits.maxPixels} pixels`);
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'truncated' })
      .rotate()
      .resize({ width: limits.maxSide, height: limits.maxSide, fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const orientedW = (meta.orientation ?? 1) >= 5 ? h : w;
    const orientedH = (meta.orientation ?? 1) >= 5 ? w : h;
    return { rgb: data, width: info.width, height: info.height, scale: orientedW / info.width, originalWidth: orientedW, originalHeight: orientedH };
  } catch {
    throw new FaceInputError('unreadable', 'the image is corrupt or truncated');
  }
}
