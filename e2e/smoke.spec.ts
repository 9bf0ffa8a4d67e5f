/**
 * The studio page loads, its worker finds a WebGPU adapter, runs the smoke kernel, and the
 * status bar shows the adapter and the result. Keeps a screenshot in e2e-artifacts/.
 */
import { expect, test } from '@playwright/test';

test('the engine worker finds an adapter and passes the smoke kernel', async ({ page }, testInfo) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });

  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'MoC Studio' })).toBeVisible();

  const status = page.getByRole('status', { name: 'Engine status' });
  await expect(status).toBeVisible();
  // Fails fast with the engine's own message if it reports an error instead of getting ready.
  await expect(status).toContainText(/Engine (ready|error)/);
  await expect(status, await status.innerText()).toContainText('Engine ready');

  await expect(status).toContainText(/Adapter\s+\S/);
  await expect(status).toContainText(/elementwise\.add ×1000/);
  await expect(status).toContainText(/max error 0\b/);

  const panel = page.getByRole('region', { name: 'Engine check' });
  await expect(panel.getByText('Passed')).toBeVisible();
  await expect(panel.getByRole('list', { name: 'Optional GPU features' })).toBeVisible();

  const shot = await page.screenshot({ path: 'e2e-artifacts/smoke.png', fullPage: true });
  await testInfo.attach('smoke', { body: shot, contentType: 'image/png' });
  expect(problems, problems.join('\n')).toEqual([]);
});

test('a browser without WebGPU gets told how to enable it', async ({ page }) => {
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
  });
  await page.goto('/');

  const status = page.getByRole('status', { name: 'Engine status' });
  await expect(status).toContainText('Engine error');
  await expect(status).toContainText('webgpu-missing');

  const alert = page.getByRole('alert');
  await expect(alert.getByRole('heading', { name: 'This browser has no WebGPU' })).toBeVisible();
  await expect(alert).toContainText('chrome://flags/#enable-unsafe-webgpu');
  await expect(alert.getByRole('button', { name: 'Try again' })).toBeVisible();
  await page.screenshot({ path: 'e2e-artifacts/no-webgpu.png' });
});
