import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance, HTTPMethods, RouteOptions } from 'fastify';
import { isPermission, operatorRoles, rolesGrant, sessionOnly, type OperatorRole } from '../../src/auth/index.js';
import { buildApp } from '../../src/main/app.js';
import type * as HttpModule from '../../src/platform/http/index.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { signInOperator } from '../helpers/operators.js';

/**
 * Walks every /admin/v1 route the app registers, with every operator role and
 * with no session at all. Routes are collected with an onRoute hook added the
 * moment the HTTP server is created, so a route any module adds later is
 * walked without anyone editing this file.
 */
const collected = vi.hoisted(() => ({ routes: [] as RouteOptions[] }));

vi.mock('../../src/platform/http/index.js', async (importOriginal) => {
  const original = await importOriginal<typeof HttpModule>();
  return {
    ...original,
    createHttpServer: async (...args: Parameters<typeof original.createHttpServer>) => {
      const app = await original.createHttpServer(...args);
      app.addHook('onRoute', (route) => {
        collected.routes.push(route);
      });
      return app;
    },
  };
});

/** The only /admin/v1 routes anyone may call without a session. */
const publicAdminRoutes = new Set(['POST /admin/v1/auth/login']);
/** Stands in for every path parameter: no route finds anything under it, so nothing real is touched. */
const dummyId = 'xxx_0000000000000000000000000z';
const bodyMethods = new Set(['POST', 'PUT', 'PATCH']);

interface AdminRoute {
  method: HTTPMethods;
  url: string;
  auth: string | undefined;
  permission: string | undefined;
}

function adminRoutes(): AdminRoute[] {
  const routes: AdminRoute[] = [];
  for (const route of collected.routes) {
    if (!route.url.startsWith('/admin/v1')) continue;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      // Fastify adds a HEAD twin for every GET; it shares the GET's config.
      if (method === 'HEAD') continue;
      routes.push({ method, url: route.url, auth: route.config?.auth, permission: route.config?.permission });
    }
  }
  return routes.sort((left, right) => Number(left.url.endsWith('/logout')) - Number(right.url.endsWith('/logout')));
}

function concreteUrl(url: string): string {
  return url.replace(/:[A-Za-z_][A-Za-z0-9_]*/g, dummyId).replace(/\*$/, 'dummy');
}

describe('roles and permissions on every admin route', () => {
  let context: TestContext;
  let app: FastifyInstance;
  const sessions = new Map<OperatorRole, Record<string, string>>();

  beforeAll(async () => {
    context = await createTestContext();
    app = await buildApp(context, { logRequests: false });
    for (const role of operatorRoles) sessions.set(role, (await signInOperator(app, context, { roles: [role] })).headers);
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  function send(route: AdminRoute, headers: Record<string, string>) {
    return app.inject({
      method: route.method,
      url: concreteUrl(route.url),
      headers,
      ...(bodyMethods.has(route.method) ? { payload: {} } : {}),
    });
  }

  /** A route may end the session it was called with (sign out): sign that role in again before going on. */
  async function keepSignedIn(role: OperatorRole): Promise<Record<string, string>> {
    const headers = sessions.get(role) ?? {};
    const me = await app.inject({ method: 'GET', url: '/admin/v1/auth/me', headers });
    if (me.statusCode === 200) return headers;
    const renewed = (await signInOperator(app, context, { roles: [role] })).headers;
    sessions.set(role, renewed);
    return renewed;
  }

  it('finds the admin routes, including those of other modules', () => {
    const urls = adminRoutes().map((route) => `${route.method} ${route.url}`);
    expect(urls).toEqual(expect.arrayContaining(['POST /admin/v1/auth/login', 'GET /admin/v1/auth/me', 'GET /admin/v1/operators', 'GET /admin/v1/audit']));
  });

  it('every admin route is an operator route with a known permission, except sign-in', () => {
    const problems = adminRoutes()
      .filter((route) => !publicAdminRoutes.has(`${route.method} ${route.url}`))
      .filter((route) => route.auth !== 'operator' || route.permission === undefined || (route.permission !== sessionOnly && !isPermission(route.permission)))
      .map((route) => `${route.method} ${route.url}: auth=${route.auth ?? '(none)'} permission=${route.permission ?? '(none)'}`);
    expect(problems).toEqual([]);
  });

  it('without a session every operator route answers 401 not_authenticated', async () => {
    const problems: string[] = [];
    for (const route of adminRoutes().filter((candidate) => candidate.auth === 'operator')) {
      const response = await send(route, {});
      if (response.statusCode !== 401 || response.json().error?.code !== 'not_authenticated') {
        problems.push(`${route.method} ${route.url}: ${response.statusCode} ${response.body.slice(0, 200)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('each role gets 403 forbidden exactly where it lacks the permission, and never a 5xx', async () => {
    const problems: string[] = [];
    for (const route of adminRoutes().filter((candidate) => candidate.auth === 'operator')) {
      for (const role of operatorRoles) {
        const granted = route.permission === sessionOnly || (route.permission !== undefined && isPermission(route.permission) && rolesGrant([role], route.permission));
        const headers = await keepSignedIn(role);
        const response = await send(route, headers);
        const code: unknown = response.statusCode >= 400 ? response.json().error?.code : undefined;
        const where = `${route.method} ${route.url} as ${role}`;
        if (granted && (response.statusCode === 401 || response.statusCode === 403)) problems.push(`${where}: allowed, but got ${response.statusCode} ${String(code)}`);
        if (!granted && (response.statusCode !== 403 || code !== 'forbidden')) problems.push(`${where}: not allowed, but got ${response.statusCode} ${String(code)}`);
        if (response.statusCode >= 500) problems.push(`${where}: ${response.statusCode} ${response.body.slice(0, 200)}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
