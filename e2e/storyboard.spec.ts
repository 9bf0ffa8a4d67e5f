/**
 * The storyboard editor as a video author uses it: write a two-shot storyboard, add, duplicate,
 * delete, undo and redo (buttons and keys), reorder (keyboard and drag), durations in seconds,
 * reload and find it intact, export and import JSON (a bad file is refused in one line and the
 * board is kept), and the sample storyboards when they are shipped. Needs no model.
 */
import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';

const captions = (page: Page) => page.getByRole('textbox', { name: /^Shot \d+ caption$/ });

async function captionTexts(page: Page): Promise<string[]> {
  return captions(page).evaluateAll((els) => els.map((e) => (e as HTMLTextAreaElement).value));
}

async function saved(page: Page): Promise<void> {
  await expect(page.locator('.save-state')).toHaveText('Saved');
}

test('edit a two-shot storyboard: undo/redo, reorder, reload, export and import', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  await page.goto('/');
  await saved(page);
  const global = page.getByRole('textbox', { name: 'Global caption' });
  await global.fill('Character 1 is a red star. Character 2 is a blue circle.');
  await page.getByRole('textbox', { name: 'Shot 1 caption' }).fill('Character 1 bounces in the meadow, wide.');
  await page.getByRole('textbox', { name: 'Shot 2 caption' }).fill('Character 2 spins on the beach, close-up.');
  await expect(captions(page)).toHaveCount(2);

  // add, then undo and redo with the buttons and the keys
  await page.getByRole('button', { name: 'Add shot' }).click();
  await expect(captions(page)).toHaveCount(3);
  await expect(page.getByRole('textbox', { name: 'Shot 3 caption' })).toBeFocused();
  await page.keyboard.type('Character 1 grows in the snow, wide.');
  await page.getByRole('button', { name: 'Undo' }).click(); // the typing
  await expect(page.getByRole('textbox', { name: 'Shot 3 caption' })).toHaveValue('');
  await page.getByRole('button', { name: 'Undo' }).click(); // the new shot
  await expect(captions(page)).toHaveCount(2);
  await page.getByRole('button', { name: 'Redo' }).click();
  await expect(captions(page)).toHaveCount(3);
  await page.keyboard.press('Control+z');
  await expect(captions(page)).toHaveCount(2);
  await page.keyboard.press('Control+Shift+z');
  await expect(captions(page)).toHaveCount(3);
  await page.getByRole('button', { name: 'Delete shot 3' }).click();
  await expect(captions(page)).toHaveCount(2);

  // duplicate and delete
  await page.getByRole('button', { name: 'Duplicate shot 1' }).click();
  expect(await captionTexts(page)).toEqual([
    'Character 1 bounces in the meadow, wide.',
    'Character 1 bounces in the meadow, wide.',
    'Character 2 spins on the beach, close-up.',
  ]);
  await page.getByRole('button', { name: 'Delete shot 2' }).click();

  // reorder with the keyboard: focus stays in the moved caption
  await page.getByRole('textbox', { name: 'Shot 2 caption' }).focus();
  await page.keyboard.press('Alt+ArrowUp');
  expect(await captionTexts(page)).toEqual([
    'Character 2 spins on the beach, close-up.',
    'Character 1 bounces in the meadow, wide.',
  ]);
  await expect(page.getByRole('textbox', { name: 'Shot 1 caption' })).toBeFocused();
  await page.keyboard.press('Alt+ArrowDown');
  expect(await captionTexts(page)).toEqual([
    'Character 1 bounces in the meadow, wide.',
    'Character 2 spins on the beach, close-up.',
  ]);

  // reorder by dragging shot 2's handle above shot 1
  const handle = page.getByRole('button', { name: /^Reorder shot 2/ });
  const target = page.locator('.shot-card').first();
  const h = (await handle.boundingBox())!;
  const t = (await target.boundingBox())!;
  await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2);
  await page.mouse.down();
  await page.mouse.move(h.x + h.width / 2, h.y - 10, { steps: 4 });
  await page.mouse.move(h.x + h.width / 2, t.y + 5, { steps: 8 });
  await page.mouse.up();
  await expect
    .poll(() => captionTexts(page))
    .toEqual(['Character 2 spins on the beach, close-up.', 'Character 1 bounces in the meadow, wide.']);
  await page.getByRole('button', { name: 'Undo' }).click();
  expect(await captionTexts(page)).toEqual([
    'Character 1 bounces in the meadow, wide.',
    'Character 2 spins on the beach, close-up.',
  ]);

  // durations in seconds at 8 fps
  await page.getByRole('radio', { name: 'seconds' }).click();
  await page.getByRole('spinbutton', { name: 'Shot 1 duration in seconds' }).fill('1.5');
  await page.getByRole('radio', { name: 'frames' }).click();
  await expect(page.getByRole('spinbutton', { name: 'Shot 1 duration in frames' })).toHaveValue('12');
  await page.getByRole('spinbutton', { name: 'Shot 2 seed' }).fill('42');

  // reload: everything is still there
  await saved(page);
  await page.reload();
  await saved(page);
  await expect(global).toHaveValue('Character 1 is a red star. Character 2 is a blue circle.');
  expect(await captionTexts(page)).toEqual([
    'Character 1 bounces in the meadow, wide.',
    'Character 2 spins on the beach, close-up.',
  ]);
  await expect(page.getByRole('spinbutton', { name: 'Shot 1 duration in frames' })).toHaveValue('12');
  await expect(page.getByRole('spinbutton', { name: 'Shot 2 seed' })).toHaveValue('42');

  // export JSON: the storyboard schema
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export JSON' }).click(),
  ]);
  const exported = JSON.parse(readFileSync((await download.path())!, 'utf8'));
  expect(exported).toEqual({
    version: 1,
    globalCaption: 'Character 1 is a red star. Character 2 is a blue circle.',
    shots: [
      { caption: 'Character 1 bounces in the meadow, wide.', frames: 12, seed: 1 },
      { caption: 'Character 2 spins on the beach, close-up.', frames: 8, seed: 42 },
    ],
  });

  // a bad file is refused in one line, and the board is kept
  const file = page.getByLabel('Storyboard file to import');
  await file.setInputFiles({
    name: 'bad.json',
    mimeType: 'application/json',
    buffer: Buffer.from('{"version":1,"globalCaption":"x","shots":[]}'),
  });
  const alert = page.getByRole('alert').filter({ hasText: 'Could not import' });
  await expect(alert).toContainText(
    '“bad.json”: storyboard.shots: a storyboard needs at least one shot — your storyboard is unchanged.',
  );
  expect((await alert.innerText()).split('\n')).toHaveLength(1);
  expect(await captionTexts(page)).toEqual([
    'Character 1 bounces in the meadow, wide.',
    'Character 2 spins on the beach, close-up.',
  ]);
  await file.setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"version":1,') });
  await expect(alert).toContainText('not valid JSON');

  // a good one replaces it, and Undo brings the old one back
  const three = {
    ...exported,
    shots: [...exported.shots, { caption: 'Nobody is in the city, wide.', frames: 4, seed: 7 }],
  };
  await file.setInputFiles({
    name: 'three.json',
    mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify(three)),
  });
  await expect(captions(page)).toHaveCount(3);
  await expect(alert).toHaveCount(0);
  await page.getByRole('button', { name: 'Undo' }).click();
  await expect(captions(page)).toHaveCount(2);

  await page.screenshot({ path: 'e2e-artifacts/storyboard.png' });
  expect(problems, problems.join('\n')).toEqual([]);
});

test('the sample storyboards are one click away', async ({ page }) => {
  await page.goto('/');
  const samples = page.getByRole('group', { name: 'Sample storyboards' }).getByRole('button');
  await expect(samples.first()).toBeVisible();
  const before = await captionTexts(page);
  await samples.first().click();
  await expect.poll(() => captionTexts(page)).not.toEqual(before);
  await expect(page.getByRole('alert').filter({ hasText: 'Could not' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Undo' }).click();
  expect(await captionTexts(page)).toEqual(before);
});
