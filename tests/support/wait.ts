/**
 * Reads `read()` every 100 ms until `ok` holds and returns that value; throws naming `what`
 * after `tries` reads. For cross-tier tests that wait on another process's state.
 */
export async function poll<T>(what: string, read: () => T | Promise<T>, ok: (v: T) => boolean, tries = 600): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}
