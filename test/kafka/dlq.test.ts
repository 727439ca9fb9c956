import { describe, expect, it } from 'vitest';
import { createBodyRedactor, describeAnswer } from '../../src/kafka/app-response.js';
import { DeadLetterProducer, type DeadLetterReason, deadLetterHeaders, type ProducerClient } from '../../src/kafka/dlq.js';
import type { KafkaRecord } from '../../src/record.js';

const record: KafkaRecord = {
  topic: 'orders',
  partition: 2,
  offset: 1234,
  timestamp: 1_700_000_000_000,
  key: Buffer.from('k'),
  value: Buffer.from('v'),
  headers: [
    ['trace', Buffer.from('abc')],
    ['x-bin', Buffer.from([0x00, 0xff])],
    ['trace', Buffer.from('def')],
  ],
  fetchedAt: 0,
};

const reason: DeadLetterReason = {
  errorType: 'http_422',
  errorMessage: 'app answered 422 Unprocessable Entity',
  httpStatus: 422,
  attempts: 1,
  failedAt: new Date(Date.UTC(2025, 0, 15, 12, 30, 45, 123)),
};

/** [name, utf-8 value] pairs, in order. */
const flatten = (headers: Array<Record<string, Buffer>>) =>
  headers.map((entry) => {
    const names = Object.keys(entry);
    expect(names).toHaveLength(1);
    return [names[0]!, entry[names[0]!]!] as const;
  });

describe('deadLetterHeaders (DESIGN A3)', () => {
  it('puts the original headers first, in order and byte-exact, then the A3 headers in order', () => {
    const out = flatten(deadLetterHeaders(record, reason));
    expect(out.map(([n]) => n)).toEqual([
      'trace',
      'x-bin',
      'trace',
      'original_topic',
      'original_partition',
      'original_offset',
      'error_type',
      'error_message',
      'failed_at',
      'http_status',
      'attempts',
    ]);
    expect(out[0]![1].toString()).toBe('abc');
    expect(out[1]![1].equals(Buffer.from([0x00, 0xff]))).toBe(true);
    expect(out[2]![1].toString()).toBe('def');
    expect(Object.fromEntries(out.slice(3).map(([n, v]) => [n, v.toString('utf8')]))).toEqual({
      original_topic: 'orders',
      original_partition: '2',
      original_offset: '1234',
      error_type: 'http_422',
      error_message: 'app answered 422 Unprocessable Entity',
      failed_at: '2025-01-15T12:30:45.123Z',
      http_status: '422',
      attempts: '1',
    });
  });

  it('writes failed_at as ISO-8601 UTC', () => {
    const out = flatten(deadLetterHeaders(record, reason));
    const failedAt = out.find(([n]) => n === 'failed_at')![1].toString();
    expect(failedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
    expect(Date.parse(failedAt)).toBe(reason.failedAt.getTime());
  });

  it('leaves http_status out when there was no HTTP answer', () => {
    const out = flatten(deadLetterHeaders(record, { errorType: 'timeout', errorMessage: 'no answer in 30000 ms', attempts: 5, failedAt: reason.failedAt }));
    expect(out.map(([n]) => n)).not.toContain('http_status');
    expect(out.at(-1)![0]).toBe('attempts');
    expect(out.at(-1)![1].toString()).toBe('5');
  });

  it('works for a record without headers and encodes a non-ASCII error message as UTF-8', () => {
    const out = flatten(deadLetterHeaders({ ...record, headers: [] }, { ...reason, errorMessage: 'réponse: 422 ✗' }));
    expect(out[0]![0]).toBe('original_topic');
    expect(out.find(([n]) => n === 'error_message')![1].toString('utf8')).toBe('réponse: 422 ✗');
  });

  it('adds app_response after http_status when the app answered with a body, and leaves it out otherwise', () => {
    const out = flatten(deadLetterHeaders(record, { ...reason, appResponse: '{"error":"missing field amount"}' }));
    expect(out.slice(3).map(([n]) => n)).toEqual([
      'original_topic',
      'original_partition',
      'original_offset',
      'error_type',
      'error_message',
      'failed_at',
      'http_status',
      'app_response',
      'attempts',
    ]);
    expect(out.find(([n]) => n === 'app_response')![1].toString('utf8')).toBe('{"error":"missing field amount"}');
    expect(flatten(deadLetterHeaders(record, reason)).map(([n]) => n)).not.toContain('app_response');
  });

  describe('with the app answer as the pipeline describes it', () => {
    const SECRET = 'courier-app-token-5f2c';
    const headersFor = (status: number, body: Buffer) => {
      const answer = describeAnswer(status, body, createBodyRedactor([SECRET]));
      const out = flatten(deadLetterHeaders(record, { ...reason, httpStatus: status, errorMessage: answer.message, appResponse: answer.appResponse }));
      return Object.fromEntries(out.slice(3).map(([n, v]) => [n, v]));
    };

    it('carries a UTF-8 body byte for byte and quotes it in error_message', () => {
      const body = Buffer.from('{"error":"montant manquant ✗"}');
      const headers = headersFor(422, body);
      expect(headers.app_response).toEqual(body);
      expect(headers.error_message!.toString('utf8')).toBe('app answered HTTP 422: {"error":"montant manquant ✗"}');
    });

    it('carries a body that is not UTF-8 as base64: and says so in error_message', () => {
      const body = Buffer.from([0xc3, 0x28, 0x00, 0xff]);
      const headers = headersFor(400, body);
      expect(headers.app_response!.toString('utf8')).toBe(`base64:${body.toString('base64')}`);
      expect(headers.error_message!.toString('utf8')).toBe('app answered HTTP 400 with 4 bytes that are not UTF-8 text (base64 in app_response)');
    });

    it('never carries a configured secret, in text or base64', () => {
      const text = headersFor(400, Buffer.from(`{"error":"token ${SECRET} is not allowed here"}`));
      expect(text.app_response!.toString('utf8')).toBe('{"error":"token [REDACTED] is not allowed here"}');
      expect(text.error_message!.toString('utf8')).not.toContain(SECRET);
      const binary = headersFor(400, Buffer.concat([Buffer.from([0xff]), Buffer.from(SECRET)]));
      const decoded = Buffer.from(binary.app_response!.toString('utf8').slice('base64:'.length), 'base64');
      expect(decoded.toString('latin1')).toBe('\xff[REDACTED]');
    });

    it('keeps CR, LF and other control characters out of error_message', () => {
      const headers = headersFor(422, Buffer.from('line one\r\nline two\u0000\u001b[0m'));
      expect(headers.error_message!.toString('utf8')).toBe('app answered HTTP 422: line one line two [0m');
      expect(headers.app_response!.toString('utf8')).toBe('line one\r\nline two\u0000\u001b[0m');
    });

    it('adds no app_response for an empty body, and error_message stays as before', () => {
      const headers = headersFor(400, Buffer.alloc(0));
      expect(headers).not.toHaveProperty('app_response');
      expect(headers.error_message!.toString('utf8')).toBe('app answered HTTP 400');
    });
  });

  it('does not mutate the record headers', () => {
    const before = record.headers.length;
    deadLetterHeaders(record, reason);
    expect(record.headers).toHaveLength(before);
  });
});

describe('DeadLetterProducer after a fatal error (e.g. no IDEMPOTENT_WRITE on the cluster)', () => {
  /** Clients that write what they are given; the test decides when one fails fatally or cannot connect. */
  function fakeClients() {
    const made: Array<{ written: string[]; closed: boolean; fail: (error: unknown) => void; connectError?: Error }> = [];
    let nextConnectError: Error | undefined;
    let writesFail = false;
    const createClient = (onFatal: (error: unknown) => void): ProducerClient => {
      const client = { written: [] as string[], closed: false, fail: onFatal, connectError: nextConnectError };
      made.push(client);
      return {
        connect: async () => {
          if (client.connectError) throw client.connectError;
        },
        produce: async (topic, written) => {
          if (made.at(-1) !== client) throw Object.assign(new Error('Local: Fatal error'), { code: -150 });
          if (writesFail) {
            onFatal(Object.assign(new Error('Fatal error: Broker: Cluster authorization failed'), { isFatal: true }));
            throw Object.assign(new Error('Local: Fatal error'), { code: -150 });
          }
          client.written.push(`${topic}@${written.offset}`);
        },
        close: async () => {
          client.closed = true;
        },
        topics: async () => new Set(['orders.dlq']),
      };
    };
    return {
      made,
      createClient,
      failNextConnect: (error: Error | undefined) => (nextConnectError = error),
      /** Every client connects, then fails fatally at its first write (the ACL is still missing). */
      failWrites: (fail: boolean) => (writesFail = fail),
    };
  }

  /** The clock times, every 250 ms from `from` to `to`, at which a DLQ write (each one refused) made a new client. */
  async function replacementsBetween(
    producer: DeadLetterProducer,
    clients: ReturnType<typeof fakeClients>,
    clock: { now: number },
    from: number,
    to: number,
  ): Promise<number[]> {
    const at: number[] = [];
    for (clock.now = from; clock.now <= to; clock.now += 250) {
      const before = clients.made.length;
      await expect(producer.send('orders.dlq', record, reason)).rejects.toMatchObject({ code: 'DLQ_WRITE_FAILED', retriable: true });
      if (clients.made.length > before) at.push(clock.now);
    }
    return at;
  }

  it('replaces the failed producer at the next write; the write goes through the new one; the old one is closed', async () => {
    const clients = fakeClients();
    const producer = new DeadLetterProducer({}, { createClient: clients.createClient });
    await producer.start(1000);
    await producer.send('orders.dlq', record, reason);
    clients.made[0]?.fail(Object.assign(new Error('Fatal error: Broker: Cluster authorization failed'), { isFatal: true, code: -150 }));
    await producer.send('orders.dlq', { ...record, offset: 1235 }, reason);
    expect(clients.made).toHaveLength(2);
    expect(clients.made.map((c) => c.written)).toEqual([['orders.dlq@1234'], ['orders.dlq@1235']]);
    expect(clients.made[0]?.closed).toBe(true);
    // A late report from the replaced client changes nothing.
    clients.made[0]?.fail(new Error('Fatal error: again'));
    await producer.send('orders.dlq', { ...record, offset: 1236 }, reason);
    expect(clients.made).toHaveLength(2);
  });

  it('while a replacement cannot connect, writes fail as retriable and new ones are tried 1 s, 2 s, 4 s apart', async () => {
    const clients = fakeClients();
    const clock = { now: 0 };
    const producer = new DeadLetterProducer({}, { createClient: clients.createClient, now: () => clock.now });
    await producer.start(1000);
    clients.made[0]?.fail(Object.assign(new Error('Fatal error'), { isFatal: true }));
    clients.failNextConnect(new Error('Cluster authorization failed'));
    expect(await replacementsBetween(producer, clients, clock, 0, 8000)).toEqual([0, 1000, 3000, 7000]);
    clients.failNextConnect(undefined);
    clock.now = 15_000;
    await producer.send('orders.dlq', record, reason);
    expect(clients.made.at(-1)?.written).toEqual(['orders.dlq@1234']);
  });

  it('a replacement that connects but fails at its first write (ACL still missing) keeps the backoff; a write that succeeds resets it', async () => {
    const clients = fakeClients();
    const clock = { now: 0 };
    const producer = new DeadLetterProducer({}, { createClient: clients.createClient, now: () => clock.now });
    await producer.start(1000);
    clients.failWrites(true);
    clients.made[0]?.fail(Object.assign(new Error('Fatal error'), { isFatal: true }));
    expect(await replacementsBetween(producer, clients, clock, 0, 8000)).toEqual([0, 1000, 3000, 7000]);

    clients.failWrites(false);
    clock.now = 15_000;
    await producer.send('orders.dlq', record, reason);
    // The next fatal failure starts from 1 s again.
    clients.made.at(-1)?.fail(Object.assign(new Error('Fatal error'), { isFatal: true }));
    clients.failWrites(true);
    expect(await replacementsBetween(producer, clients, clock, 20_000, 22_000)).toEqual([20_000, 21_000]);
  });
});
