import type { IncomingMessage, ServerResponse } from "node:http";
import { bodyTooLarge } from "./errors.ts";

/**
 * Reads a request body, at most `maxBytes`: a larger declared length is
 * refused before a byte is read, and reading stops at the first byte past the
 * limit. A refused body is not drained: the answer closes the connection.
 */
export async function readBodyWithinLimit(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<Buffer> {
  refuseDeclaredTooLarge(req, res, maxBytes);
  const body = await readAtMost(req, maxBytes);
  if (body === null) {
    closeAfterAnswer(req, res);
    throw bodyTooLarge(maxBytes);
  }
  return body;
}

/** Throws `invalid_request` for a declared Content-Length over the limit, before reading anything. */
export function refuseDeclaredTooLarge(req: IncomingMessage, res: ServerResponse, maxBytes: number): void {
  const declared = Number(req.headers["content-length"]);
  if (!Number.isFinite(declared) || declared <= maxBytes) return;
  closeAfterAnswer(req, res);
  throw bodyTooLarge(maxBytes);
}

/** The body, or null as soon as it grows past `maxBytes`. */
function readAtMost(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: Buffer | null, error?: Error) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      if (error) reject(error);
      else resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      req.pause();
      finish(null);
    };
    const onEnd = () => finish(Buffer.concat(chunks, size));
    const onError = (error: Error) => finish(null, error);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/** The answer closes the connection instead of draining a body that is not read. */
function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader("connection", "close");
  res.once("finish", () => req.socket?.destroySoon());
}

/**
 * Answering before the request body has arrived leaves bytes on the wire that
 * Node may not get to discard: the client's next request on that keep-alive
 * connection would then be reset. Such an answer closes the connection instead.
 */
export function closeIfBodyUnread(req: IncomingMessage, res: ServerResponse): void {
  if (!req.complete && !res.headersSent) res.setHeader("connection", "close");
}
