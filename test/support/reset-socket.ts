/**
 * Resets a server-side connection (TCP RST) the way a lost answer looks to the caller, safely.
 *
 * `socket.resetAndDestroy()` on a socket whose write side is already shutting down (the peer went
 * away, e.g. a driver process SIGKILLed by the crash suite, and the HTTP server answered its FIN
 * with `end()`) fails inside libuv (`uv_tcp_close_reset`: EINVAL) after Node marked the handle
 * closing: the handle is never closed, and at exit Node's handle clean-up waits for it for ever,
 * spinning (the crash suite's test file kept running after its test had passed). Such a peer is
 * gone anyway, so a plain destroy is all that is left to do.
 */
import type { Socket } from 'node:net';

export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded || !socket.writable || socket.readableEnded) socket.destroy();
  else socket.resetAndDestroy();
}
