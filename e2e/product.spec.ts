/**
 * The studio as a product (issue 21): the document never scrolls past the app, versions keep
 * their seeds, work leaves the browser (project file, MP4/WebM), and a model folder from disk is
 * used for a generation. The model and the board: e2e/model-fixture.ts.
 */
import { expect, test, type Page } from '@playwright/test';
import { BOARD, MODEL, hasModel, openWithBoard, serveModel, watchRun } from './model-fixture.ts';

/** The document is exactly the window: nothing below the app to scroll to. */
async function expectNoOverscroll(page: Page): Promise<void> {
  await page.mouse.move(200, 300);
  for (let i = 0; i < 5; i++) await page.mouse.wheel(0, 2000);
  const m = await page.evaluate(() => ({ scroll: document.documentElement.scrollHeight, view: window.innerHeight, y: window.scrollY }));
  expect(m.scroll).toBe(m.view);
  expect(m.y).toBe(0);
}

test('the document does not scroll past the app (desktop and phone widths)', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('status', { name: 'Engine status' })).toContainText(/Engine (ready|error)/, { timeout: 60_000 });
  await expect(page.locator('.chips .visually-hidden').first()).toBeAttached();
  await expectNoOverscroll(page);
  await page.setViewportSize({ width: 390, height: 844 });
  await expectNoOverscroll(page);
});

test('Regenerate shows the new seed, and Keep brings a version’s seed back', async ({ page }) => {
  test.skip(!hasModel(), `no model folder at ${MODEL}`);
  test.setTimeout(240_000);
  await serveModel(page);
  await openWithBoard(page);
  await page.getByRole('spinbutton', { name: 'Sampler steps' }).fill('2');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await watchRun(page, 2);
  const seed = page.getByRole('spinbutton', { name: 'Shot 1 seed' });
  const status = page.getByLabel('Shot 1 version', { exact: true });
  await expect(seed).toHaveValue(String(BOARD.shots[0].seed));
  await expect(status).toHaveText('Generated · v1 of 1');

  // Regenerate on an unchanged shot: a new seed, shown in the field and beside the version
  await page.getByRole('button', { name: 'Regenerate shot 1' }).click();
  await watchRun(page, 2);
  const reseeded = await seed.inputValue();
  expect(reseeded).not.toBe(String(BOARD.shots[0].seed));
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);

  // Keep v1: its seed comes back and nothing reads as changed
  const takes = page.getByRole('region', { name: 'Shot 1 versions' });
  await takes.getByRole('listitem').filter({ hasText: 'v1' }).getByRole('button', { name: 'Keep this' }).click();
  await expect(seed).toHaveValue(String(BOARD.shots[0].seed));
  await expect(status).toHaveText('Generated · v1 of 2');
  // keeping the version already kept leaves the seed as it is
  await takes.getByRole('listitem').filter({ hasText: 'v2' }).getByRole('button', { name: 'Keep this' }).click();
  await expect(seed).toHaveValue(reseeded);
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);

  // a 10-digit seed is shown whole
  await seed.fill('4294967295');
  await seed.blur();
  await expect(seed).toHaveValue('4294967295');
  const fits = await seed.evaluate((el) => (el as HTMLInputElement).scrollWidth <= (el as HTMLInputElement).clientWidth);
  expect(fits).toBe(true);
  await expect(status).toContainText('Changed since generated (seed)');
});
