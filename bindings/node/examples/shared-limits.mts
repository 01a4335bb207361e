// One tenant's calls shared by every process of an app through Redis: run it in several terminals at once with the
// same REDIS_URL; together they never make more than 60 calls a minute for the tenant.
import { Limiter, PermitTimeoutError } from 'xeroguard';

const limiter = await Limiter.connect(undefined, {
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6380',
  keyPrefix: 'example-app',
  onStoreError: 'local',
  workers: 4,
});
const tenant = process.env.XERO_TENANT_ID ?? 'tenant-a';
for (let call = 1; call <= 5; call++) {
  try {
    await limiter.withPermit(
      tenant,
      async (permit) => {
        console.log(
          `call ${call}: permit ${permit.permit}${permit.fallback ? ` (decided locally: ${permit.fallback})` : ''}`,
        );
      },
      { timeoutMs: 30_000 },
    );
  } catch (error) {
    if (!(error instanceof PermitTimeoutError)) throw error;
    console.log(error.message); // the library's words: "no permit for tenant ... within 30 s: minute limit: ..."
  }
}
limiter.close();
