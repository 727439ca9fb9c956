import type { Registry } from 'prom-client';
import type { Operations } from '../api/server.js';

/**
 * What the supervisor and a worker say over the IPC channel: the supervisor calls one of the
 * worker's Operations (or asks for its metrics), the worker answers with the value or an error.
 * Plain JSON objects, so any channel that carries them will do (node's IPC in main, a pair of
 * in-memory channels in tests).
 */

export type OperationName = keyof Operations | 'metrics';

export interface CallMessage {
  readonly kind: 'call';
  readonly id: number;
  readonly op: OperationName;
  readonly args: readonly unknown[];
}

export type ReplyMessage =
  | { readonly kind: 'reply'; readonly id: number; readonly value?: unknown }
  | { readonly kind: 'reply'; readonly id: number; readonly error: string; readonly code?: string };

/** One end of the IPC channel. */
export interface Channel {
  send(message: CallMessage | ReplyMessage): void;
  onMessage(listener: (message: unknown) => void): void;
}

const OPERATIONS: ReadonlySet<string> = new Set<OperationName>([
  'failure',
  'notReadyReasons',
  'lag',
  'assignment',
  'routes',
  'rebalances',
  'adminPause',
  'seek',
  'redrive',
  'deadLetters',
  'metrics',
]);

export function isCall(message: unknown): message is CallMessage {
  const call = message as Partial<CallMessage> | null;
  return call?.kind === 'call' && typeof call.id === 'number' && typeof call.op === 'string' && OPERATIONS.has(call.op) && Array.isArray(call.args);
}

export function isReply(message: unknown): message is ReplyMessage {
  const reply = message as Partial<ReplyMessage> | null;
  return reply?.kind === 'reply' && typeof reply.id === 'number';
}

/** The worker's side: answers each call from its own Operations and metrics registry. */
export function answerCalls(channel: Channel, operations: Operations, registry: Registry): void {
  channel.onMessage((message) => {
    if (!isCall(message)) return;
    const run = async (): Promise<unknown> => {
      if (message.op === 'metrics') return registry.getMetricsAsJSON();
      const method = operations[message.op] as (...args: unknown[]) => unknown;
      return method.apply(operations, [...message.args]);
    };
    run().then(
      // JSON drops an undefined value: the reply then has no `value`, which reads back as undefined.
      (value) => channel.send({ kind: 'reply', id: message.id, value }),
      (error: unknown) => {
        const code = (error as { code?: unknown } | undefined)?.code;
        channel.send({
          kind: 'reply',
          id: message.id,
          error: error instanceof Error ? error.message : String(error),
          ...(typeof code === 'string' ? { code } : {}),
        });
      },
    );
  });
}
