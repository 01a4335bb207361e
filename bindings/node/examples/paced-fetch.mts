// Lists invoices for one tenant through guardFetch, 20 calls at once: the limiter spreads them over Xero's windows
// and the hooks say what it did. Reads XERO_API_URL (https://api.xero.com by default), XERO_TENANT_ID and
// XERO_ACCESS_TOKEN.
import { guardFetch, Limiter, type ResendEvent, type WaitEvent } from 'xeroguard';

const apiUrl = process.env.XERO_API_URL ?? 'https://api.xero.com';
const limiter = new Limiter();
const xeroFetch = guardFetch(fetch, limiter, {
  prefixes: [`${apiUrl}/`],
  onWait: (e: WaitEvent) => console.log(`waiting ${e.waitMs} ms (${e.reason})`),
  onRetry: (e: ResendEvent) => console.log(`resending after ${e.classification?.category ?? e.giveUp}`),
});
const headers = {
  Authorization: `Bearer ${process.env.XERO_ACCESS_TOKEN ?? ''}`,
  'Xero-Tenant-Id': process.env.XERO_TENANT_ID ?? '',
};
const statuses = await Promise.all(
  Array.from({ length: 20 }, async () => {
    const response = await xeroFetch(`${apiUrl}/api.xro/2.0/Invoices`, { headers });
    await response.arrayBuffer();
    return response.status;
  }),
);
console.log(statuses.join(' '));
limiter.close();
