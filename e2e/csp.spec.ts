/**
 * The built studio runs under its Content-Security-Policy (vite.config.ts): the policy is a
 * header of the page and of the engine worker's script (and a <meta> in the page), the engine worker starts and passes the smoke kernel, the storyboard and sample UI work,
 * and nothing the studio does is reported as a violation. An inline script injected on purpose
 * is blocked (so the policy is really enforced) and is the only violation seen (reported once by
 * each of the two policies).
 */
import { expect, test } from '@playwright/test';

test('the built studio runs under its CSP with no violations', async ({ page }) => {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __csp: string[] }).__csp = seen;
    document.addEventListener('securitypolicyviolation', (e) =>
      seen.push(`${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`),
    );
  });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content.Security.Policy/i.test(m.text()))
      problems.push(`console ${m.type()}: ${m.text()}`);
  });

  // the policy is a response header on every response, the engine worker's script included
  // (a <meta> policy does not reach workers: they follow their own script's headers)
  const headers = new Map<string, string | undefined>();
  page.on('response', (r) => headers.set(new URL(r.url()).pathname, r.headers()['content-security-policy']));
  const doc = await page.goto('/');
  const header = doc!.headers()['content-security-policy'];
  for (const directive of ["script-src 'self'", "worker-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"])
    expect(header).toContain(directive);
  expect(header).not.toContain('unsafe');
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("connect-src 'self'");

  await expect(page.getByRole('heading', { level: 1, name: 'MoC Studio' })).toBeVisible();
  const status = page.getByRole('status', { name: 'Engine status' });
  await expect(status).toContainText(/Engine (ready|error)/);
  await expect(status, await status.innerText()).toContainText('Engine ready');
  await expect(status).toContainText(/max error 0\b/);
  await page
    .getByRole('button', { name: 'Add shot' })
    .first()
    .click()
    .catch(() => undefined);

  const worker = [...headers.keys()].find((p) => /worker.*\.js$/.test(p));
  expect(worker, [...headers.keys()].join(' ')).toBeDefined();
  expect(headers.get(worker!)).toBe(header);

  expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
  expect(problems, problems.join('\n')).toEqual([]);

  // enforced: an injected inline script does not run, and is reported
  const ran = await page.evaluate(async () => {
    const s = document.createElement('script');
    s.textContent = 'window.__inlineRan = true';
    document.head.append(s);
    await new Promise((r) => setTimeout(r, 100));
    return (window as unknown as { __inlineRan?: boolean }).__inlineRan === true;
  });
  expect(ran).toBe(false);
  const violations = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
  // one report per policy that blocks it: the header's and the <meta>'s
  expect(violations).toHaveLength(2);
  for (const v of violations) expect(v).toMatch(/^script-src-elem inline/);
});
