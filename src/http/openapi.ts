/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the routes' zod schemas
 * (fastify-type-provider-zod + @fastify/swagger), served at `GET /openapi.json`, and the docs
 * page (@fastify/swagger-ui, its assets served from node_modules, no external request) at
 * `GET /docs`. Both are public in the access policy (auth.ts): they say what the API accepts,
 * never anything stored.
 *
 * Each operation's `security` is derived from the access policy's classification of its route
 * (auth.ts `classifyRoute`), so the document cannot disagree with the guards. Responses are
 * described, not enforced: the serializer is plain JSON, so a view that gains a field never turns
 * into a 500; the document's validity and coverage are tested (test/integration/openapi.test.ts).
 */
import { readFileSync } from 'node:fs';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  jsonSchemaTransformObject,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { OpenAPIV3_1 } from 'openapi-types';
import type { z } from 'zod';
import { classifyRoute, DOCS_PATH, OPENAPI_PATH, type Access } from './auth.ts';
import { CONSOLE_PATH } from '../console/paths.ts';
import { DASHBOARD_PATH } from './dashboard.ts';
import { isOptionalBody, isParsedByHandler } from './schemas.ts';

export { DOCS_PATH, OPENAPI_PATH };

/** The package's version, the document's `info.version` (package.json is two levels up). */
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/**
 * Routes never in the document: the docs page's own, the dashboard's (HTML, assets, its API) and
 * the console's (HTML pages and forms for people, docs/console.md).
 */
export function isUndocumentedPath(url: string): boolean {
  return [DOCS_PATH, DASHBOARD_PATH, CONSOLE_PATH].some(
    (p) => url === p || url.startsWith(`${p}/`),
  );
}

/** The security requirement of an access level (names of `components.securitySchemes`). */
const SECURITY: Readonly<Record<Access, Record<string, string[]>[]>> = {
  public: [],
  read: [{ apiToken: [] }, { readToken: [] }],
  write: [{ apiToken: [] }],
  webhook: [{ payloadSignature: [] }],
  dashboard: [{ dashboardBasic: [] }],
  'console-read': [{ dashboardBasic: [] }, { apiToken: [] }, { readToken: [] }],
  'console-write': [{ dashboardBasic: [] }, { apiToken: [] }],
};

/**
 * Zod validates querystring, params and body, except a body a capability's parser validates
 * ({@link isParsedByHandler}), and a route's own JSON schemas (none today) are not zod's: both
 * pass through.
 */
const zodValidator: FastifySchemaCompiler<z.ZodType> = (route) => {
  if (isParsedByHandler(route.schema)) return (data: unknown) => ({ value: data });
  const validate = validatorCompiler(route);
  // An optional body (documented so) may be left out: fastify then hands over null.
  if (isOptionalBody(route.schema)) {
    return (data: unknown) =>
      data === null || data === undefined ? { value: data } : validate(data);
  }
  return validate;
};

/** One route as registered, and whether the document leaves it out. */
export interface RegisteredRoute {
  method: string;
  url: string;
  /** `schema: { hide: true }`, or under an undocumented path ({@link isUndocumentedPath}). */
  hidden: boolean;
}

const registered = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Every route registered on `app` since {@link installOpenApi} (the coverage test's list). */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return registered.get(app) ?? [];
}

/**
 * The zod validator (with {@link isParsedByHandler} bodies passed through) and the JSON
 * serializer: what a server needs to mount route modules declaring zod schemas. Part of
 * {@link installOpenApi}; alone for a test that mounts one route module on a bare server.
 *
 * The serializer is plain `JSON.stringify`, or with `checkResponses` (HTTP_CHECK_RESPONSES) the
 * zod type provider's, which checks each answer against the schema the document states for its
 * status first: a mismatch throws (fastify answers 500 and logs the route and the fields), so the
 * test suite, which turns it on, fails on an answer the document does not describe.
 */
export function installZodCompilers(
  app: FastifyInstance,
  opts: { checkResponses?: boolean } = {},
): void {
  app.setValidatorCompiler(zodValidator);
  if (opts.checkResponses === true) {
    app.setSerializerCompiler(serializerCompiler as FastifySerializerCompiler<unknown>);
  } else {
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  }
}

/**
 * What fastify itself answers before a route's handler runs, in the one error shape (errors.ts
 * `frameworkError`): a body it cannot parse (400), over the body limit (413) or of a media type no
 * parser takes (415), on every route that reads a body (any method but GET: fastify parses a
 * body sent to a route that declares none too); a path parameter over `maxParamLength` (414) or
 * not percent-decodable (400). The webhook parses its own bodies (any media type, its own limit,
 * its route states its 413). Added where the route did not state the status itself.
 */
const FRAMEWORK_ANSWERS = {
  body: {
    400: 'the body is not valid JSON (`invalid_json`)',
    413: 'the body is over 1 MiB (`payload_too_large`)',
    415: 'the Content-Type is not one this route reads (`unsupported_media_type`)',
  },
  params: {
    400: 'the URL is malformed (`bad_request`)',
    414: 'a path parameter is over 100 characters (`uri_too_long`)',
  },
} as const;

function addFrameworkResponses(op: OpenAPIV3_1.OperationObject, method: string, url: string): void {
  const answers: [string, string][] = [];
  if (url.includes(':')) answers.push(...Object.entries(FRAMEWORK_ANSWERS.params));
  if (method !== 'GET' && classifyRoute(method, url) !== 'webhook') {
    answers.push(...Object.entries(FRAMEWORK_ANSWERS.body));
  }
  const stated = new Set(Object.keys(op.responses ?? {}));
  const responses = (op.responses ??= {});
  for (const [status, description] of answers) {
    if (stated.has(status)) continue;
    const before = responses[status] as { description?: string } | undefined;
    responses[status] = {
      description: before?.description ? `${before.description}; or ${description}` : description,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
}

/**
 * Installs the zod compilers and the document on `app`: call before registering any route (the
 * document collects routes as they are registered).
 */
export async function installOpenApi(
  app: FastifyInstance,
  opts: { checkResponses?: boolean } = {},
): Promise<void> {
  /** `METHOD url` of the routes whose body may be absent ({@link isOptionalBody}). */
  const optionalBodies = new Set<string>();
  const routes: RegisteredRoute[] = [];
  registered.set(app, routes);
  app.addHook('onRoute', (route) => {
    const schema = route.schema;
    const hidden = schema?.hide === true || isUndocumentedPath(route.url);
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, hidden });
  });
  installZodCompilers(app, opts);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'sayswitch-billing',
        version: VERSION,
        description:
          'Payments, batches and subscriptions through Sayswitch. Every error is ' +
          "`{ error: { code, message, details? } }`. Lists are cursor-paginated: pass a page's " +
          '`next_cursor` as `cursor`.',
      },
      components: {
        securitySchemes: {
          apiToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'API_TOKEN: every route',
          },
          readToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'API_READ_TOKEN: GET routes only (403 on the others)',
          },
          payloadSignature: {
            type: 'apiKey',
            in: 'header',
            name: 'payloadSignature',
            description: "Sayswitch's HMAC-SHA512 of the raw body with the secret key",
          },
          dashboardBasic: {
            type: 'http',
            scheme: 'basic',
            description: 'DASHBOARD_USER / DASHBOARD_PASSWORD (the queue dashboard)',
          },
        },
      },
    },
    transform: (doc) => {
      if (isUndocumentedPath(doc.url)) return { schema: { hide: true }, url: doc.url };
      const out = jsonSchemaTransform(doc);
      const method = [doc.route.method].flat()[0] ?? 'GET';
      if (isOptionalBody(doc.schema?.body)) optionalBodies.add(`${method} ${doc.url}`);
      const schema = out.schema as Record<string, unknown> | undefined;
      if (schema && schema.hide !== true) {
        schema.security = SECURITY[classifyRoute(method, doc.url)];
      }
      return out;
    },
    transformObject: (doc) => {
      const out = jsonSchemaTransformObject(doc) as OpenAPIV3_1.Document;
      for (const [path, item] of Object.entries(out.paths ?? {})) {
        const url = path.replace(/\{([^}]+)\}/g, ':$1');
        // @fastify/swagger marks every request body required; an optional one is not.
        for (const m of ['post', 'put', 'patch'] as const) {
          const body = item?.[m]?.requestBody;
          if (body && 'required' in body && optionalBodies.has(`${m.toUpperCase()} ${url}`)) {
            body.required = false;
          }
        }
        for (const m of ['get', 'post', 'put', 'patch', 'delete'] as const) {
          const op = item?.[m];
          if (op) addFrameworkResponses(op, m.toUpperCase(), url);
        }
      }
      return out;
    },
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: DOCS_PATH,
    // No call to the public validator badge: the page works offline.
    uiConfig: { validatorUrl: null, deepLinking: true },
    // The package's strict CSP, minus what would break it over plain HTTP (a compose deployment on
    // localhost) or allow an outside host: no upgrade-insecure-requests, no validator image, no
    // https: styles; Swagger UI's own inline styles allowed (scripts stay 'self' only).
    staticCSP: true,
    transformStaticCSP: (header) =>
      header
        .replace(' upgrade-insecure-requests;', '')
        .replace(' validator.swagger.io', '')
        .replace("style-src 'self' https:", "style-src 'self' 'unsafe-inline'"),
  });
  app.get(OPENAPI_PATH, { schema: { hide: true } }, () => app.swagger());
}
