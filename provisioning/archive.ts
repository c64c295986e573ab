import { create as tarCreate, extract as tarExtract } from 'tar';
import { mkdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * gzip'd tar archives of a folder, kept in memory (bundles are a few kilobytes) so the bytes
 * can go through OutputFolder.write with 0600 like any other secret. Portable mode drops
 * owner names and ids (meaningless on the terminal) but keeps each file's mode, so private
 * keys unpack as 0600.
 */
export async function tarGzFolder(parentDir: string, folderName: string): Promise<Buffer> {
  const stream = tarCreate({ gzip: true, cwd: parentDir, portable: true, noMtime: false }, [folderName]);
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Unpacks an archive made by tarGzFolder into dir (used by restore and tests). */
export async function extractTarGz(archive: Buffer, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  // strict: a damaged archive is an error, not a silently partial folder; absolute paths and
  // ".." entries are refused by tar itself (preservePaths is off).
  await pipeline(Readable.from([archive]), tarExtract({ cwd: dir, strict: true }));
}
