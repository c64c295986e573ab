/** An error with the HTTP status the API answers with; the message is safe to show the caller. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}
