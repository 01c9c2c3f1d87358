import type { ColumnType, Selectable } from 'kysely';
import type { JWK } from 'jose';

export interface SigningKeyTable {
  kid: string;
  algorithm: string;
  public_jwk: ColumnType<JWK, string, string>;
  /** PKCS#8 PEM, or its AES-256-GCM encryption when `encrypted` (IAM_SIGNING_KEY_SECRET). */
  private_key: string;
  encrypted: boolean;
  active_from: Date;
  created_at: ColumnType<Date, never, never>;
}

export type SigningKey = Selectable<SigningKeyTable>;
