import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/main/app.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { signInOperator } from '../helpers/operators.js';

describe('signInOperator helper', () => {
  let context: TestContext;
  let app: FastifyInstance;

  beforeAll(async () => {
    context = await createTestContext();
    app = await buildApp(context, { logRequests: false });
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  it('returns headers that authenticate later requests', async () => {
    const { userId, headers } = await signInOperator(app, context, { roles: ['admin'] });
    const me = await app.inject({ method: 'GET', url: '/admin/v1/auth/me', headers });
    expect(me.statusCode).toBe(200);
    expect(me.json().operator).toMatchObject({ id: userId, roles: ['admin'] });
    const list = await app.inject({ method: 'GET', url: '/admin/v1/operators', headers });
    expect(list.statusCode).toBe(200);
  });
});
