import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCardNumber } from '../../src/kernel/card-number.ts';
import { SECRET_VARIABLES } from '../../src/config/config.ts';
import { createLogger, maskPans, REDACTED_KEYS, REDACTED_PATHS } from '../../src/infra/logger.ts';

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

  it('an Error logged without a message: its message masked, and kept with its stack', () => {
    const { lines, logger } = capture();
    const err = Object.assign(new Error('declined card 4111 1111 1111 1111'), { code: 'E_X' });
    logger.error(err);
    logger.error({ err });
    logger.error({ err }, 'with a message');
    logger.warn({ job: { err } }, 'nested');
    const out = lines.join('');
    expect(out).not.toContain('4111 1111 1111 1111');
    expect(out).not.toContain('4111111111111111');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((l) => l.msg)).toEqual([
      'declined card [PAN …1111]',
      'declined card [PAN …1111]',
      'with a message',
      'nested',
    ]);
    for (const l of parsed.slice(0, 3)) {
      expect(l.err).toMatchObject({
        type: 'Error',
        message: 'declined card [PAN …1111]',
        code: 'E_X',
        stack: expect.stringContaining('declined card [PAN …1111]') as string,
      });
    }
    expect(parsed[3]).toMatchObject({ job: { err: { message: 'declined card [PAN …1111]' } } });
  });

  it('masks Luhn-valid card-length digit runs and keeps other numbers readable', () => {
    expect(maskPans('card 5204 7300 0000 2449 declined')).toBe('card [PAN …2449] declined');
    expect(maskPans('stream id 1763942400001-0')).toBe('stream id 1763942400001-0');
    expect(maskPans('amount 150050, id 12345')).toBe('amount 150050, id 12345');
  });
});

/** A secret value per name, distinct enough to be found in the output. */
const secretFor = (name: string) => `s3cr3t-value-of-${name.replace(/\W/g, '')}-zz`;

describe('identifiers are logged, secrets are redacted by their own names', () => {
  const IDS = {
    key: 'api_inv-1001',
    intentKey: 'bat_3f9a0c1d2e4b5a6c7d8e_17',
    reference: 'sub_gold-7_20250131_2',
    subscriptionId: 'gold-7',
    batchId: '3f9a0c1d2e4b5a6c7d8e',
    eventId: 'evt_sub_gold-7_20250131_2_succeeded',
  };

  it('a line with an intent key and a reference shows them, flat and nested', () => {
    const { lines, logger } = capture();
    logger.info({ ...IDS, amount: 2500, currency: 'NGN' }, 'submitting to gateway');
    logger.warn({ intent: { key: IDS.key, reference: `${IDS.key}_1` } }, 'nested');
    const [flat, nested] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(flat).toMatchObject(IDS);
    expect(nested).toMatchObject({ intent: { key: IDS.key, reference: `${IDS.key}_1` } });
    expect(lines.join('')).not.toContain('[REDACTED]');
  });

  it('no identifier name is on the redaction list', () => {
    for (const name of ['key', 'intentKey', 'reference', 'subscriptionId', 'batchId', 'eventId']) {
      expect(REDACTED_KEYS).not.toContain(name);
    }
  });

  it('every secret variable of the configuration is on the redaction list', () => {
    for (const name of SECRET_VARIABLES) expect(REDACTED_KEYS).toContain(name);
  });

  it('every listed secret name is redacted at depth 0, 1 and 2', () => {
    const { lines, logger } = capture();
    for (const name of REDACTED_KEYS) {
      const value = secretFor(name);
      logger.info({ [name]: value, key: 'api_k' }, 'depth 0');
      logger.info({ outer: { [name]: value } }, 'depth 1');
      logger.info({ a: { b: { [name]: value } } }, 'depth 2');
    }
    expect(lines).toHaveLength(REDACTED_KEYS.length * 3);
    const out = lines.join('');
    for (const name of REDACTED_KEYS) expect(out).not.toContain(secretFor(name));
    // The identifier beside the secret stayed.
    expect(out).toContain('"key":"api_k"');
  });

  it('the secrets of the usual shapes stay redacted (listed here, not read from the list)', () => {
    const names = [
      'authorization',
      'Authorization',
      'secretKey',
      'SAYSWITCH_SECRET_KEY',
      'encryptionKey',
      'SAYSWITCH_ENCRYPTION_KEY',
      'encryptionIv',
      'SAYSWITCH_ENCRYPTION_IV',
      'DATA_ENCRYPTION_KEY',
      'dataEncryptionKey',
      'API_TOKEN',
      'apiToken',
      'API_TOKEN_PREVIOUS',
      'apiTokenPrevious',
      'API_READ_TOKEN_PREVIOUS',
      'apiReadTokenPrevious',
      'NOTIFY_SECRET',
      'NOTIFY_SECRET_PREVIOUS',
      'previousSecret',
      'SAYSWITCH_SECRET_KEY_PREVIOUS',
      'previousSecretKey',
      'DATA_ENCRYPTION_KEY_PREVIOUS',
      'previousDataEncryptionKey',
      'secret',
      'DASHBOARD_PASSWORD',
      'password',
      'card',
      'cardToken',
      'card_token',
      'cardTokenSealed',
      'cardNumber',
      'card_number',
      'pan',
      'cvv',
      'pin',
      'payloadSignature',
    ];
    const { lines, logger } = capture();
    logger.info(Object.fromEntries(names.map((n) => [n, secretFor(n)])), 'all at once');
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const n of names) expect(line[n], n).toBe('[REDACTED]');
  });

  it('a secret under a generic name is redacted by its path: the encryption key and IV', () => {
    expect(REDACTED_PATHS).toEqual(['encryption.key', 'encryption.iv']);
    const { lines, logger } = capture();
    const encryption = { key: secretFor('enc-key'), iv: secretFor('enc-iv'), encoding: 'hex' };
    logger.info({ encryption }, 'depth 0');
    logger.info({ sayswitch: { encryption } }, 'depth 1');
    logger.info({ config: { sayswitch: { encryption } } }, 'depth 2');
    const out = lines.join('');
    expect(out).not.toContain(secretFor('enc-key'));
    expect(out).not.toContain(secretFor('enc-iv'));
    expect(out).toContain('"encoding":"hex"');
  });
});

describe('card-number masking and our identifiers', () => {
  it('never masks the identifiers of kernel/ids.ts built from ordinary parts', () => {
    for (const id of [
      'sub_gold-7_20250131',
      'sub_gold-7_20250131_2',
      'sub_2025000123_20250131_99999',
      'bat_3f9a0c1d2e4b5a6c7d8e_1048576',
      'bat_3f9a0c1d2e4b5a6c7d8e_INV-2025-0042_1',
      'api_0f8e7d6c5b4a39281706f5e4d3c2b1a0_1',
      'api_order-20250131-0001_12',
      'evt_api_inv-1001_1_succeeded',
    ]) {
      expect(maskPans(id)).toBe(id);
      const { lines, logger } = capture();
      logger.info({ key: id, reference: `${id}_1` }, `transition of ${id}`);
      const line = JSON.parse(lines[0]!) as Record<string, unknown>;
      expect(line).toMatchObject({ key: id, reference: `${id}_1`, msg: `transition of ${id}` });
    }
  });

  it('masks a card number used as a part of an identifier (decided: card data wins)', () => {
    expect(maskPans('api_4111111111111111_1')).toBe('api_[PAN …1111]_1');
    expect(maskPans('api_4111111111111111')).toBe('api_[PAN …1111]');
    expect(maskPans('bat_b1_5204-7300-0000-2449_3')).toBe('bat_b1_[PAN …2449]_3');
    // A Luhn-invalid number of the same length is an id, not a card number.
    expect(maskPans('api_4111111111111112_1')).toBe('api_4111111111111112_1');
    // Digits inside a word are not a card number on their own.
    expect(maskPans('tok4111111111111111x')).toBe('tok4111111111111111x');
  });

  it("masks a child logger's bindings too (a batch id chosen by the caller)", () => {
    const { lines, logger } = capture();
    const child = logger.child({
      batchId: '4111111111111111',
      nested: { ref: 'x_5500000000000004' },
    });
    child.info('batch claimed');
    child.child({ key: 'api_4111111111111111_1' }).warn({ reference: 'r' }, 'deeper');
    const out = lines.join('');
    expect(out).not.toMatch(/4111111111111111|5500000000000004/);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      batchId: '[PAN …1111]',
      nested: { ref: 'x_[PAN …0004]' },
      msg: 'batch claimed',
    });
    expect(JSON.parse(lines[1] ?? '{}')).toMatchObject({
      batchId: '[PAN …1111]',
      key: 'api_[PAN …1111]_1',
      reference: 'r',
    });
  });

  it('masks what the input rules call a card number: 12 to 19 digits, any grouping', () => {
    // A 12-digit Maestro-length number, and groups with more than one separator between them.
    expect(maskPans('card 5000 0000 0009 declined')).toBe('card [PAN …0009] declined');
    expect(maskPans('card 4111 - 1111 - 1111 - 1111')).toBe('card [PAN …1111]');
    // The same rule as the card_token refusal, digit for digit (a longer run, in groups, may
    // still have a card number of its own masked: the groups stand apart).
    fc.assert(
      fc.property(
        fc.stringMatching(/^\d{10,19}$/),
        fc.constantFrom('', ' ', '-', ' - '),
        (d, sep) => {
          const written = d.match(/.{1,4}/g)!.join(sep);
          expect(maskPans(written) !== written).toBe(isCardNumber(written));
        },
      ),
    );
  });
});
