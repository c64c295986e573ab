/**
 * Hard size limits. Receivers check sizes before parsing anything, so an oversized message
 * costs a length comparison, not a decode. Chosen for: a 640x480 JPEG punch photo (~40-80 KB),
 * enrollment with a few reference photos, and 128..1024-d float32 templates.
 */
export const LIMITS = {
  /** Decoded bytes of the optional punch photo. */
  eventPhotoBytes: 256 * 1024,
  /** Whole envelope on the events topic. */
  eventEnvelopeBytes: 512 * 1024,
  /** Whole envelope on the cmd topic (may carry reference photos and templates). */
  commandEnvelopeBytes: 4 * 1024 * 1024,
  /** Whole envelope carrying cloud receipts. */
  receiptEnvelopeBytes: 64 * 1024,
  /** Envelope header (canonical JSON). */
  headerBytes: 1024,
  referencePhotoBytes: 1024 * 1024,
  referencePhotos: 3,
  templatesPerSubject: 16,
  templateDims: 2048,
  ackBatch: 500,
} as const;
