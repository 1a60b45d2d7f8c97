import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createOperator, csrfHeaderName, sessionCookieName, totpCodeAt, type OperatorRole } from '../../src/auth/index.js';
import { minimumHashParameters, setPasswordHashParameters } from '../../src/auth/passwords.js';
import type { TestContext } from './context.js';

// Every admin test signs operators in; at production scrypt cost that alone would take minutes.
setPasswordHashParameters(minimumHashParameters);

const testOperatorPassword = 'correct horse battery staple';

/**
 * Creates an operator with the given roles and signs them in through the real
 * login route (password + a TOTP code for the context's clock). The returned
 * headers authenticate later app.inject calls, CSRF token included.
 */
export async function signInOperator(
  app: FastifyInstance,
  context: TestContext,
  options: { roles: OperatorRole[]; email?: string },
): Promise<{ userId: string; headers: Record<string, string> }> {
  const email = options.email ?? `operator-${randomBytes(6).toString('hex')}@fen.test`;
  const created = await createOperator(context, { email, name: `Test ${options.roles.join('+')}`, password: testOperatorPassword, roles: options.roles });
  const response = await app.inject({
    method: 'POST',
    url: '/admin/v1/auth/login',
    payload: { email, password: testOperatorPassword, totp: await totpCodeAt(created.totpSecret, context.clock.now()) },
  });
  if (response.statusCode !== 200) throw new Error(`signInOperator: login answered ${response.statusCode}: ${response.body}`);
  const cookie = response.cookies.find((candidate) => candidate.name === sessionCookieName);
  if (!cookie) throw new Error('signInOperator: login set no session cookie');
  const body = response.json<{ csrf_token: string }>();
  return { userId: created.user.id, headers: { cookie: `${sessionCookieName}=${cookie.value}`, [csrfHeaderName]: body.csrf_token } };
}

