/**
 * Counts what a bench process sends Redis, from the client side: top-level commands (a script
 * call is one, whatever it runs inside) and socket writes to the Redis port (round trips: ioredis
 * writes a pipelined or auto-pipelined batch at once). Redis's own INFO counts every command run
 * inside scripts too, but not requests; this is the other half.
 */
import net from 'node:net';
import { Redis } from 'ioredis';

export interface RedisIo {
  commands: number;
  writes: number;
}

/** Starts counting in this process for the Redis listening on `port`; returns the live counters. */
export function countRedisIo(port: number): RedisIo {
  const io: RedisIo = { commands: 0, writes: 0 };
  // Wrapping prototype methods is the point here: `this` is passed on with apply.
  const socket = net.Socket.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const write = socket.write;
  socket.write = function (this: net.Socket, ...args: unknown[]) {
    if (this.remotePort === port) io.writes++;
    return write?.apply(this, args);
  };
  const client = Redis.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const send = client.sendCommand;
  client.sendCommand = function (this: Redis, ...args: unknown[]) {
    io.commands++;
    return send?.apply(this, args);
  };
  return io;
}
