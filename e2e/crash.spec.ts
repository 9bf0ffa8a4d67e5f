/**
 * Crashes: the engine worker dies mid-generation (the studio's `crashWorker()` test hook makes it
 * throw and close itself, or, with 'silent', only close itself) and the studio restarts it; the
 * GPU device is lost mid-generation (`loseDevice()`) and the interrupted run is resumed from the
 * banner; the page is closed mid-generation (a tab crash, as far as the page can tell) and a new
 * page on the same browser profile finds the storyboard and the finished shots, and offers to
 * resume the run the page was in the middle of. The model and the board: e2e/model-fixture.ts.
 */
import { expect, test, type Page } from '@playwright/test';
import {
  BOARD,
  MODEL,
  hasModel,
  openWithBoard,
  progress,
  serveModel,
  startLongRun,
  watchRun,
} from './model-fixture.ts';

test.skip(!hasModel(), `no model folder at ${MODEL}`);

/** Generates BOARD once with 3 steps, to completion. */
async function generateOnce(page: Page): Promise<void> {
  await page.getByRole('spinbutton', { name: 'Sampler steps' }).fill('3');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await watchRun(page, 3);
  await expect(page.getByRole('img', { name: 'Shot 1, middle frame' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Shot 2, middle frame' })).toBeVisible();
}

/** The storyboard and the two finished shots are there. */
async function expectBoardAndShots(page: Page): Promise<void> {
  await expect(page.getByRole('textbox', { name: 'Shot 1 caption' })).toHaveValue(BOARD.shots[0].caption);
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveValue(BOARD.shots[1].caption);
  await expect(page.getByRole('img', { name: 'Shot 1, middle frame' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Shot 2, middle frame' })).toBeVisible();
}

/** The id of the chosen take of each shot, from the store. */
const chosenTakes = (page: Page) => page.evaluate(() => JSON.stringify(window.mocStudio!.store.getState().chosen));

const resumeButton = (page: Page) => page.getByRole('button', { name: 'Resume generation' });

/**
 * Opens the studio, generates BOARD once, starts a long run and breaks it with `fault` (run in
 * the page); returns the chosen takes from before and the page errors seen (filled as they come).
 */
async function interruptedRun(page: Page, fault: () => void): Promise<{ takes: string; problems: string[] }> {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await serveModel(page);
  await openWithBoard(page);
  await generateOnce(page);
  const takes = await chosenTakes(page);
  await startLongRun(page);
  await page.evaluate(fault);
  return { takes, problems };
}

test('the engine worker crashes mid-generation: banner, restart, shots kept, Generate works', async ({ page }) => {
  test.setTimeout(300_000);
  const { takes, problems } = await interruptedRun(page, () => window.mocStudio!.crashWorker());
  await expect(
    page.locator('.banner').getByText(/^The engine worker stopped .*your storyboard and finished shots are kept/),
  ).toBeVisible();
  await expect(page.getByText(/^Generation failed: The engine worker stopped during generation/)).toBeVisible();
  await expect(page.getByText(/The engine worker stopped once and the engine recovered/)).toBeVisible({
    timeout: 60_000,
  });
  await expect(page.getByRole('status', { name: 'Engine status' })).toContainText('Engine ready');
  await expect(page.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 60_000 });
  await expectBoardAndShots(page);
  expect(await chosenTakes(page)).toBe(takes);
  await expect(resumeButton(page)).toBeEnabled();

  // a new run works on the new worker and replaces the shots (and the offer to resume)
  await generateOnce(page);
  const newTakes = await chosenTakes(page);
  expect(newTakes).not.toBe(takes);
  await expect(resumeButton(page)).toHaveCount(0);

  // the worker closes itself without an error event: the pending call would never return; the
  // client's watchdog (a ping unanswered for 30 s) finds it and the studio restarts the same way
  await startLongRun(page);
  await page.evaluate(() => window.mocStudio!.crashWorker('silent'));
  await expect(page.getByText(/^Generation failed: The engine worker stopped during generation/)).toBeVisible({
    timeout: 60_000,
  });
  await expect(page.getByText(/The engine worker stopped 2 times and the engine recovered/)).toBeVisible({
    timeout: 60_000,
  });
  await expect(page.getByRole('status', { name: 'Engine status' })).toContainText('Engine ready');
  await expect(page.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 60_000 });
  await expectBoardAndShots(page);
  expect(await chosenTakes(page)).toBe(newTakes);
  // the offer to resume can be dismissed, and nothing else changes
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await expect(resumeButton(page)).toHaveCount(0);
  await expectBoardAndShots(page);
  expect(await chosenTakes(page)).toBe(newTakes);
  expect(problems, problems.join('\n')).toEqual([]);
});

test('the GPU device is lost mid-generation: Resume generation runs the interrupted request to the end', async ({
  page,
}) => {
  test.setTimeout(300_000);
  const { takes, problems } = await interruptedRun(page, () => window.mocStudio!.loseDevice());
  await expect(
    page.locator('.banner').getByText(/^The GPU device was lost .*your storyboard and finished shots are kept/),
  ).toBeVisible();
  await expect(page.getByText(/^Generation failed: The GPU device was lost during generation/)).toBeVisible();
  await expect(
    page.locator('.banner').getByText(/^The interrupted run \(generating 2 shots, stopped at step \d+ of 40\)/),
  ).toBeVisible();
  await expect(page.getByText(/The GPU device was lost once and the engine recovered/)).toBeVisible({
    timeout: 60_000,
  });
  await expect(resumeButton(page)).toBeEnabled({ timeout: 60_000 });
  await expectBoardAndShots(page);
  expect(await chosenTakes(page)).toBe(takes);

  // the panel has moved on since: Resume runs the interrupted request (40 steps, the same seeds)
  await page.getByRole('spinbutton', { name: 'Sampler steps' }).fill('3');
  await resumeButton(page).click();
  await expect(resumeButton(page)).toHaveCount(0);
  await watchRun(page, 40);
  await expectBoardAndShots(page);
  const after = await page.evaluate(() => {
    const s = window.mocStudio!.store.getState();
    return s.shotIds.map((id) => ({
      id,
      takes: s.takes[id].map((t) => t.id),
      chosen: s.takes[id].find((t) => t.id === s.chosen[id])!,
    }));
  });
  const before = JSON.parse(takes) as Record<string, string>;
  for (const [i, shot] of after.entries()) {
    expect(shot.chosen).toMatchObject({ steps: 40, seed: BOARD.shots[i].seed });
    expect(shot.chosen.id).not.toBe(before[shot.id]);
    expect(shot.takes).toContain(before[shot.id]); // the earlier take is kept beside the new one
  }
  expect(problems, problems.join('\n')).toEqual([]);
});

test('the page is closed mid-generation: a new page finds the storyboard and the finished shots, and resumes the run', async ({
  page,
  context,
}) => {
  test.setTimeout(360_000);
  await serveModel(page);
  await openWithBoard(page);
  await generateOnce(page);
  const takes = await chosenTakes(page);
  await expect(page.locator('.save-state')).toHaveText('Saved');

  await startLongRun(page);
  await page.close(); // no beforeunload, no chance to save: as if the tab had crashed

  const again = await context.newPage();
  const problems: string[] = [];
  again.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await again.goto('/');
  await expectBoardAndShots(again);
  expect(await chosenTakes(again)).toBe(takes);
  await expect(again.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 60_000 });
  // the studio is usable: no run is stuck
  await expect(progress(again)).toHaveCount(0);
  // the run the page went away in is offered; Resume runs its request (40 steps) to the end
  await expect(
    again.locator('.banner').getByText(/^A run did not finish before the studio was last closed or reloaded/),
  ).toBeVisible();
  await expect(
    again.locator('.banner').getByText(/^The interrupted run \(generating 2 shots, stopped at step \d+ of 40\)/),
  ).toBeVisible();
  await expect(resumeButton(again)).toBeEnabled({ timeout: 60_000 });
  await resumeButton(again).click();
  await expect(resumeButton(again)).toHaveCount(0);
  await watchRun(again, 40);
  await expectBoardAndShots(again);
  const resumed = await chosenTakes(again);
  expect(resumed).not.toBe(takes);
  // finished: a reload offers nothing, and Generate runs to the end
  await expect(again.locator('.save-state')).toHaveText('Saved');
  await again.reload();
  await expectBoardAndShots(again);
  expect(await chosenTakes(again)).toBe(resumed);
  await expect(again.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 60_000 });
  await expect(resumeButton(again)).toHaveCount(0);
  await generateOnce(again);
  expect(problems, problems.join('\n')).toEqual([]);
});
