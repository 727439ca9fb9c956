import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';

/**
 * A webhook app that reads HTTP/1.1 straight off the socket, so a test sees exactly the bytes
 * Courier sent: every header line as it was on the wire, nothing normalised by an HTTP parser.
 */
export interface RawRequest {
  readonly requestLine: string;
  readonly headerLines: string[];
  readonly body: Buffer;
}

export class RawApp {
  readonly requests: RawRequest[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/raw`;
  }

  async listen(): Promise<void> {
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      let buffered = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        for (;;) {
          const end = buffered.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buffered.subarray(0, end).toString('latin1');
          const [requestLine = '', ...headerLines] = head.split('\r\n');
          const length = Number(
            headerLines
              .find((line) => /^content-length:/i.test(line))
              ?.split(':')[1]
              ?.trim() ?? 0,
          );
          if (buffered.length < end + 4 + length) return;
          this.requests.push({ requestLine, headerLines, body: Buffer.from(buffered.subarray(end + 4, end + 4 + length)) });
          buffered = buffered.subarray(end + 4 + length);
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
