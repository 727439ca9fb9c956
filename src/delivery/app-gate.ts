import { connect } from 'node:net';
import { backoff } from './retry.js';

/**
 * Whether the app behind one origin can be pushed to. When an attempt finds nothing listening
 * (connection refused, DNS failure), the gate closes: deliveries wait at `whenOpen`, and a single
 * prober opens TCP connections with backoff until one succeeds. Nothing is sent to the app while
 * it is closed, so a down app costs no attempts and produces no dead letters.
 */
export interface AppGateOptions {
  readonly url: URL;
  readonly probeInitialMs?: number;
  readonly probeMaxMs?: number;
  readonly onChange?: (up: boolean, reason: string | undefined) => void;
  /** Replaced in tests. */
  readonly probe?: (url: URL, timeoutMs: number) => Promise<boolean>;
}

export class AppGate {
  private down: { reason: string; opened: Promise<void>; open: () => void } | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private watchTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: AppGateOptions) {}

  get isUp(): boolean {
    return this.down === undefined;
  }

  get downReason(): string | undefined {
    return this.down?.reason;
  }

  /** Resolves at once while the app is up, else once a probe reaches it (or the gate stops). */
  whenOpen(): Promise<void> {
    return this.down ? this.down.opened : Promise.resolve();
  }

  /** An attempt found nothing listening. Idempotent while already down. */
  markDown(reason: string): void {
    if (this.down || this.stopped) return;
    let open!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.down = { reason, opened, open };
    this.options.onChange?.(false, reason);
    void this.probeUntilUp();
  }

  private async probeUntilUp(): Promise<void> {
    const probe = this.options.probe ?? tcpProbe;
    const policy = { initialMs: this.options.probeInitialMs ?? 100, maxMs: this.options.probeMaxMs ?? 2000, jitter: 'none' } as const;
    for (let failures = 1; !this.stopped; failures++) {
      const delay = backoff(failures, policy);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      if (this.stopped) break;
      if (await probe(this.options.url, Math.max(1000, delay))) break;
    }
    const down = this.down;
    this.down = undefined;
    if (down) {
      down.open();
      if (!this.stopped) this.options.onChange?.(true, undefined);
    }
  }

  /**
   * Probes now and then every `intervalMs` while the app is up, so a missing app is seen (and
   * reported) before a record has to find out. The first probe runs at once: a sidecar usually
   * starts before its app.
   */
  watch(intervalMs: number): void {
    if (this.watchTimer || this.stopped) return;
    const probe = this.options.probe ?? tcpProbe;
    const check = async () => {
      if (this.down || this.stopped) return;
      if (!(await probe(this.options.url, 1000)) && !this.stopped) this.markDown('no_listener');
    };
    void check();
    this.watchTimer = setInterval(() => void check(), intervalMs);
    this.watchTimer.unref();
  }

  /** Releases every waiter (shutdown); they must then check whether they should still push. */
  stop(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.stopped = true;
    this.wake?.();
    // Do not wait for a probe still connecting: waiters go now and see that they must stop.
    this.down?.open();
  }
}

/** True when a TCP connection to the URL's host and port can be opened. */
export function tcpProbe(url: URL, timeoutMs: number): Promise<boolean> {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
