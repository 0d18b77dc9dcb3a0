import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, maskPans } from '../../src/infra/logger.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}

const SECRETS = {
  secretKey: 'sk_live_SUPERSECRET123',
  encryptionKey: 'enc-key-32-bytes-long-0123456789',
  encryptionIv: 'iv-16-bytes-0001',
  cardNumber: '5204730000002449',
  cardToken: 'ss-tkn-fin1refv13noydilm77dhske',
  cvv: '244',
  pin: '1234',
  authorization: 'Bearer sk_live_SUPERSECRET123',
};

describe('logger redaction', () => {
  it('never writes secret keys, encryption key/IV, card numbers, tokens, CVV, PIN or Authorization', () => {
    const { lines, logger } = capture();
    logger.info(SECRETS, 'flat object');
    logger.info(
      {
        request: {
          headers: { authorization: SECRETS.authorization },
          body: { card: SECRETS.cardToken, cvv: '244', PIN: '1234' },
        },
      },
      'nested',
    );
    logger.info(
      {
        config: {
          SAYSWITCH_SECRET_KEY: SECRETS.secretKey,
          SAYSWITCH_ENCRYPTION_KEY: SECRETS.encryptionKey,
          SAYSWITCH_ENCRYPTION_IV: SECRETS.encryptionIv,
        },
      },
      'config',
    );
    logger.info(
      { card_token: SECRETS.cardToken, card_number: '4111 1111 1111 1111' },
      'snake case',
    );
    logger.warn(`free text with a card number ${SECRETS.cardNumber} inside`);
    logger.error({ err: new Error(`declined card 4111-1111-1111-1111`) }, 'error object');
    const out = lines.join('');
    for (const value of [
      SECRETS.secretKey,
      SECRETS.encryptionKey,
      SECRETS.encryptionIv,
      SECRETS.cardNumber,
      SECRETS.cardToken,
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '4111111111111111',
    ]) {
      expect(out).not.toContain(value);
    }
    expect(out).not.toMatch(/"cvv":"244"/);
    expect(out).not.toMatch(/"(pin|PIN)":"1234"/);
    expect(out).toContain('[REDACTED]');
    expect(out).toContain('[PAN …2449]');
    expect(lines).toHaveLength(6);
  });

  it('masks Luhn-valid card-length digit runs and keeps other numbers readable', () => {
    expect(maskPans('card 5204 7300 0000 2449 declined')).toBe('card [PAN …2449] declined');
    expect(maskPans('stream id 1763942400001-0')).toBe('stream id 1763942400001-0');
    expect(maskPans('amount 150050, id 12345')).toBe('amount 150050, id 12345');
  });
});
