import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A webhook app for tests: records every push it receives and answers as the test decides. */

export interface Receipt {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly attempt: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
  readonly at: number;
  /** How the app answered (set once it did). */
  answer?: Answer;
  /** When the answer was written. */
  answeredAt?: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** The answer body (none when absent). */
  body?: string | Buffer;
  /** Hold the answer this long. */
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  drop?: boolean;
}

export type Handler = (receipt: Receipt) => Answer | Promise<Answer>;

export class TestApp {
  readonly receipts: Receipt[] = [];
  private server: Server | undefined;
  port = 0;

  constructor(public handler: Handler = () => ({ status: 200 })) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  /** Listens on `port` (0: a free one; a fixed one to come back after `close`). */
  async listen(port = this.port): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', async () => {
        const receipt: Receipt = {
          topic: String(req.headers['kafka-topic']),
          partition: Number(req.headers['kafka-partition']),
          offset: Number(req.headers['kafka-offset']),
          attempt: Number(req.headers['courier-attempt']),
          headers: req.headers,
          body: Buffer.concat(chunks),
          at: Date.now(),
        };
        this.receipts.push(receipt);
        let clientGone = false;
        res.on('close', () => {
          if (!res.writableEnded) clientGone = true;
        });
        const answer = await this.handler(receipt);
        if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
        if (answer.drop) {
          req.socket.destroy();
        } else {
          res.writeHead(answer.status, answer.headers);
          res.end(answer.body);
        }
        // An answer written to a connection the client already gave up on never reached it.
        receipt.answer = clientGone || res.destroyed ? { status: 0, drop: true } : answer;
        receipt.answeredAt = Date.now();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The pushes the app answered with 2xx. */
  acknowledged(): Receipt[] {
    return this.receipts.filter((r) => r.answer && !r.answer.drop && r.answer.status >= 200 && r.answer.status < 300);
  }
}
