import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { KafkaClientName, KafkaConditions } from './conditions.js';

/**
 * OAUTHBEARER tokens from a provider Courier runs (AWS MSK IAM, a token file), handed to librdkafka
 * through the binding's `oauthbearer_token_refresh_cb`. librdkafka asks at start and again at 80 %
 * of a token's lifetime; a failed refresh is asked again 10 s later. A failure is a readiness reason
 * only once the client has no valid token left: until then the old token still works.
 */

export interface KafkaToken {
  readonly value: string;
  /** ms since the epoch; librdkafka refreshes at 80 % of the time until then. */
  readonly expiresAtMs: number;
  /** The principal librdkafka records for the token (the broker decides its own). */
  readonly principal: string;
  readonly extensions?: Readonly<Record<string, string>>;
}

export interface KafkaTokenProvider {
  /** As configured, e.g. `aws-msk-iam`, named in log lines and readiness reasons. */
  readonly name: string;
  token(): Promise<KafkaToken>;
  /** Releases what it holds (connections), at shutdown. */
  close?(): Promise<void>;
}

/** What the binding's refresh callback resolves with. */
export interface BindingToken {
  tokenValue: string;
  lifetime: number;
  principal: string;
  extensions?: Record<string, string>;
}

export type TokenRefreshCallback = (oauthbearerConfig: string) => Promise<BindingToken>;

export interface KafkaTokensOptions {
  readonly logger: Logger;
  readonly conditions?: KafkaConditions | undefined;
  /** Each token obtained, for the expiry gauge. */
  readonly onToken?: (client: KafkaClientName, token: KafkaToken) => void;
  readonly now?: () => number;
}

/** One provider for all of Courier's Kafka clients; each client gets its own callback. */
export class KafkaTokens {
  private readonly expiresAt = new Map<KafkaClientName, number>();
  private readonly now: () => number;

  constructor(
    readonly provider: KafkaTokenProvider,
    private readonly options: KafkaTokensOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The `oauthbearer_token_refresh_cb` for one client. */
  callbackFor(client: KafkaClientName): TokenRefreshCallback {
    return async () => {
      let token: KafkaToken;
      try {
        token = await this.provider.token();
        if (token.expiresAtMs <= this.now()) throw new Error(`the ${this.provider.name} token expired at ${new Date(token.expiresAtMs).toISOString()}`);
      } catch (error) {
        this.failed(client, error);
        throw error;
      }
      this.expiresAt.set(client, token.expiresAtMs);
      this.options.conditions?.healthy(client, ['kafka_token_failed']);
      this.options.onToken?.(client, token);
      this.options.logger.debug(
        { kafka: { client, provider: this.provider.name }, expiresAt: new Date(token.expiresAtMs).toISOString() },
        'OAUTHBEARER token obtained',
      );
      return {
        tokenValue: token.value,
        lifetime: token.expiresAtMs,
        principal: token.principal,
        ...(token.extensions ? { extensions: { ...token.extensions } } : {}),
      };
    };
  }

  private failed(client: KafkaClientName, error: unknown): void {
    const detail = `${this.provider.name}: ${error instanceof Error ? error.message : String(error)}`;
    const fix = (error as { fix?: unknown }).fix;
    const expiresAt = this.expiresAt.get(client);
    if (expiresAt !== undefined && expiresAt > this.now()) {
      this.options.logger.warn(
        { kafka: { client, provider: this.provider.name }, err: detail, validUntil: new Date(expiresAt).toISOString() },
        `${client}: refreshing the OAUTHBEARER token failed; the current one works until ${new Date(expiresAt).toISOString()} and librdkafka asks again in 10 s`,
      );
      return;
    }
    this.options.conditions?.report(client, {
      code: 'kafka_token_failed',
      detail,
      fix: typeof fix === 'string' ? fix : `check the ${this.provider.name} token provider's settings (COURIER_KAFKA_TOKEN_PROVIDER)`,
    });
  }
}

/**
 * A token someone else writes and rotates, e.g. a Kubernetes projected service account token
 * (`serviceAccountToken` volume with the broker's audience): a JWT read at every refresh, expiring
 * at its `exp`, for the principal in its `sub`.
 */
export class FileTokenProvider implements KafkaTokenProvider {
  readonly name = 'file';

  constructor(
    private readonly path: string,
    private readonly now: () => number = Date.now,
  ) {}

  async token(): Promise<KafkaToken> {
    let text: string;
    try {
      text = (await readFile(this.path, 'utf8')).trim();
    } catch (error) {
      throw Object.assign(new Error(`cannot read ${this.path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`), {
        fix: 'mount the token file there (COURIER_KAFKA_TOKEN_FILE), e.g. a projected serviceAccountToken volume',
      });
    }
    const claims = jwtClaims(text);
    if (!claims) {
      throw Object.assign(new Error(`${this.path} does not hold a JWT with a numeric exp claim`), {
        fix: 'write a JWT (header.payload.signature) with exp (and sub) to the file',
      });
    }
    const expiresAtMs = claims.exp * 1000;
    if (expiresAtMs <= this.now()) {
      throw Object.assign(new Error(`the token in ${this.path} expired at ${new Date(expiresAtMs).toISOString()}`), {
        fix: 'whatever writes COURIER_KAFKA_TOKEN_FILE (the kubelet, for a projected serviceAccountToken) has stopped renewing it: check that volume or that process',
      });
    }
    return { value: text, expiresAtMs, principal: claims.sub ?? '' };
  }
}

/** The claims of a JWT that Courier reads (it does not verify the signature: the broker does). */
export function jwtClaims(token: string, subClaim = 'sub'): { exp: number; sub?: string } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const { exp } = claims;
    const sub = claims[subClaim];
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return undefined;
    return typeof sub === 'string' ? { exp, sub } : { exp };
  } catch {
    return undefined;
  }
}

/**
 * The binding emits a failed refresh as the client's 'error' event (KafkaTokens has reported it
 * already): an EventEmitter with no 'error' listener would throw it and end the process.
 */
export function hearRefreshFailures(client: unknown): void {
  (client as NodeJS.EventEmitter).on('error', () => undefined);
}
