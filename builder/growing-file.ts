import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A file another process is still writing, read as a stream while it grows (the tarball as tar writes
 * it, so hashing and scanning it overlap the packing: BENCHMARKS.md P1). At the file's current end the
 * stream waits for more bytes until `written` settles; once it resolves, what is left is read and the
 * stream ends; if it rejects, the stream fails with its reason. Opened without following a link.
 * Here and small because the tail packages on npm are line-oriented and never end with their writer.
 */
export function readWhileWritten(path: string, written: Promise<unknown>, pollMs = 5): Readable {
  let finished = false;
  let failure: { reason: unknown } | undefined;
  written.then(
    () => void (finished = true),
    (reason: unknown) => void ((finished = true), (failure = { reason })),
  );
  return Readable.from(chunks(), { objectMode: false });

  async function* chunks(): AsyncGenerator<Buffer> {
    const fh = await opened();
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      let position = 0;
      for (;;) {
        // Read before it was written to the end, a short read only means "not yet"; read after, the end.
        const wasFinished = finished;
        if (failure) throw failure.reason;
        const { bytesRead } = await fh.read(buf, 0, buf.length, position);
        if (bytesRead > 0) {
          position += bytesRead;
          yield Buffer.from(buf.subarray(0, bytesRead));
        } else if (wasFinished) {
          return;
        } else {
          await sleep(pollMs);
        }
      }
    } finally {
      await fh.close();
    }
  }

  /** The file, once its writer made it (or the writer's failure, or ENOENT when it finished without making it). */
  async function opened(): Promise<FileHandle> {
    for (;;) {
      const wasFinished = finished;
      if (failure) throw failure.reason;
      try {
        return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || wasFinished) throw err;
      }
      await sleep(pollMs);
    }
  }
}
