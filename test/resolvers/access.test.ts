import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';

/** Keys and the audit log through the access resolvers: admins manage keys, every key sees itself. */
describe('access resolvers', () => {
  let h: ResolverHarness;

  beforeAll(async () => (h = await startResolverHarness()));
  afterAll(() => h?.stop());

  const CREATE =
    'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id name role revokedAt } } }';
  const ME = '{ me { id name role } }';

  it('lets an admin create a key whose secret then works with its role, and revoke it', async () => {
    const created = await h.run(h.keys.ADMIN, CREATE, { input: { name: 'lab system', role: 'PARTNER' } });
    expect(created.errors).toEqual([]);
    const { secret, apiKey } = created.data!.createApiKey;
    expect(secret).toMatch(/^lsk_/);
    expect(apiKey).toMatchObject({ name: 'lab system', role: 'PARTNER', revokedAt: null });
    expect((await h.run(secret, ME)).data!.me).toEqual({
      id: apiKey.id,
      name: 'lab system',
      role: 'PARTNER',
    });
    expect((await h.run(secret, CREATE, { input: { name: 'mine', role: 'ADMIN' } })).code).toBe('FORBIDDEN');

    const revoked = await h.run(h.keys.ADMIN, 'mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }', {
      id: apiKey.id,
    });
    expect(revoked.data!.revokeApiKey.revokedAt).not.toBeNull();
    expect((await h.run(secret, ME)).code).toBe('UNAUTHENTICATED');
  });

  it('refuses key management to scientists and a key name out of bounds', async () => {
    expect((await h.run(h.keys.SCIENTIST, CREATE, { input: { name: 'x', role: 'ADMIN' } })).code).toBe(
      'FORBIDDEN',
    );
    expect((await h.run(h.keys.SCIENTIST, '{ apiKeys { id } }')).code).toBe('FORBIDDEN');
    const longName = await h.run(h.keys.ADMIN, CREATE, { input: { name: 'n'.repeat(101), role: 'PARTNER' } });
    expect(longName.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'name' });
  });

  it("lists the day's audit records for admins and checks the day's format", async () => {
    const AUDIT = 'query($day: String) { auditLog(day: $day) { edges { node { action actor } } } }';
    const today = await h.run(h.keys.ADMIN, AUDIT, {});
    expect(today.errors).toEqual([]);
    const actions = today.data!.auditLog.edges.map((e: { node: { action: string } }) => e.node.action);
    expect(actions).toEqual(expect.arrayContaining(['apiKey.create', 'apiKey.revoke']));
    const bad = await h.run(h.keys.ADMIN, AUDIT, { day: '27/11/2026' });
    expect(bad.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'day' });
    expect((await h.run(h.keys.SCIENTIST, AUDIT, {})).code).toBe('FORBIDDEN');
  });
});
