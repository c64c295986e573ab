/** A photo or frame the engine cannot use, with a reason a person or a tool can act on. */
export class FaceInputError extends Error {
  override readonly name = 'FaceInputError';
  constructor(
    readonly code: 'unreadable' | 'too-large' | 'empty' | 'unsupported-format',
    message: string,
  ) {
    super(message);
  }
}

/** Comparing templates made by different models is a mistake to surface, not a low score. */
export class ModelMismatchError extends Error {
  override readonly name = 'ModelMismatchError';
  constructor(expected: string, got: string) {
    super(`template model ${got} cannot be compared with ${expected}; re-enroll with the current model`);
  }
}
