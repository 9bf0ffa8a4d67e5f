/**
 * Generation end to end with a real model on WebGPU (SwiftShader in CI): generate a two-shot
 * storyboard and watch the progress bar reach the end, play it, open the routing graph and pin
 * a chunk, walk a query token through MoC with the network's own numbers, regenerate one shot (the other kept), cancel a run
 * midway, reload and find the shots intact, lose the GPU device and recover, export video.
 *
 * The model and the board: e2e/model-fixture.ts.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import {
  BOARD,
  MODEL,
  decodeVideo,
  hasModel,
  openWithBoard,
  served,
  serveModel,
  startLongRun,
  watchRun,
} from './model-fixture.ts';

test('generate, play, route, teach, regenerate, cancel, reload, recover', async ({ page }) => {
  test.skip(!hasModel(), `no model folder at ${MODEL}`);
  test.setTimeout(300_000);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await serveModel(page);

  await openWithBoard(page);

  // a word the model does not know is marked, with the nearest known words offered
  const shot2 = page.getByRole('textbox', { name: 'Shot 2 caption' });
  await shot2.fill('Character 1 spinz in the snow.');
  await expect(page.getByText('Not in the model’s vocabulary:')).toBeVisible();
  await page.getByRole('button', { name: 'Replace “spinz” with “spins”' }).click();
  await expect(shot2).toHaveValue(BOARD.shots[1].caption);
  await expect(page.getByText('Not in the model’s vocabulary:')).toHaveCount(0);

  await page.getByRole('spinbutton', { name: 'Sampler steps' }).fill('3');
  await page.getByRole('spinbutton', { name: 'Top-k' }).fill('1'); // shot 2 then has more candidates than slots: a top-k cut

  // generate: the bar moves through the steps and ends full; previews show while sampling
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeEnabled();
  const seen = await watchRun(page, 3);
  expect(seen.some((v) => v > 0 && v < 3) || seen.includes(3)).toBe(true);
  await expect(page.getByRole('img', { name: 'Shot 1, middle frame' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Shot 2, middle frame' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Shot 1 versions' })).toBeVisible();
  await page.screenshot({ path: 'e2e-artifacts/generated.png' });

  // play: the play head moves over the timeline, then pause
  const timeline = page.getByRole('slider', { name: 'Timeline' });
  await expect(timeline).toHaveValue('0');
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  await expect.poll(() => timeline.inputValue()).not.toBe('0');
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.getByRole('button', { name: 'Next frame' }).click();
  await timeline.fill('2');
  await expect(page.getByRole('img', { name: /^Shot 2, frame 1 of 2$/ })).toBeVisible();

  // the routing graph: traces are in, pin a chunk of shot 2 and see its scores
  const graph = page.getByRole('region', { name: 'Routing graph' });
  await graph.scrollIntoViewIfNeeded();
  await expect(graph.locator('canvas')).toBeVisible();
  await expect(graph.getByText('Sparsity')).toBeVisible();
  await graph.getByRole('combobox', { name: 'Pinned chunk' }).selectOption({ label: 'Shot 2 · frame 2' });
  await expect(
    graph.getByRole('img', { name: /^Routing scores of Shot 2 · frame 2 over candidate chunks/ }),
  ).toBeVisible();
  await expect(graph.getByText('top-1 cut')).toBeVisible();
  await expect(graph.getByText(/causal cut/)).toBeVisible();
  // character 1 is in both shots: shot 1 is all shot 2 can route to, so all its picks land there
  await expect(graph.getByRole('note', { name: 'Character memory' })).toHaveText(
    'Character 1 was in shot 1 · routes there: 100% of picks (uniform over earlier frames: 100%)',
  );
  await graph.screenshot({ path: 'e2e-artifacts/routing-graph.png' });

  // teaching mode: pick a token on the frame and walk through MoC for it
  const teach = page.getByRole('region', { name: 'Teaching mode' });
  await teach.getByRole('button', { name: 'Pick a query token' }).click();
  await page.getByRole('img', { name: /^Shot 2, frame 1 of 2$/ }).click({ position: { x: 10, y: 10 } });
  await expect(teach.getByRole('heading', { name: 'The key set Ω(i) = M(i) ∪ R(i)' })).toBeVisible();
  await expect(teach).toContainText('Mandatory anchors');
  // with a generated video the numbers are the network's own: one forward pass at t = 1/steps, the last layer by default
  const origin = teach.getByRole('note', { name: 'Source of the numbers' });
  await expect(origin).toContainText(
    /^The network’s own numbers: model \S+, layer (\d+) of \1, head 1 of \d+, t = 0\.333 /,
  );
  await teach.getByRole('combobox', { name: 'Teaching layer' }).selectOption({ label: '1' });
  await expect(origin).toContainText(/layer 1 of \d+, head 1 of/);
  await teach.getByRole('combobox', { name: 'Teaching head' }).selectOption({ label: '2' });
  await expect(origin).toContainText(/layer 1 of \d+, head 2 of/);
  await teach.screenshot({ path: 'e2e-artifacts/teaching.png' });
  await teach.getByRole('button', { name: 'Stop picking' }).click();

  // regenerate shot 2 only: shot 1 keeps its one version, shot 2 gets a second
  await page.getByRole('button', { name: 'Regenerate shot 2' }).click();
  await watchRun(page, 3);
  await expect(page.locator('.run-line')).toContainText('1 shot');
  await timeline.fill('2');
  await expect(page.getByRole('heading', { name: 'Shot 2 versions' })).toBeVisible();
  await expect(page.locator('.take')).toHaveCount(2);
  await timeline.fill('0');
  await expect(page.locator('.take')).toHaveCount(1);

  // append a shot: only it is sampled, the two before are kept
  await page.getByRole('textbox', { name: 'New shot caption' }).fill('Character 1 grows, wide.');
  await page.getByRole('button', { name: 'Append shot' }).click();
  await expect(page.getByRole('textbox', { name: 'Shot 3 caption' })).toHaveValue('Character 1 grows, wide.');
  await watchRun(page, 3);
  await expect(page.getByRole('img', { name: 'Shot 3, middle frame' })).toBeVisible();
  await page.getByRole('button', { name: 'Delete shot 3' }).click();

  // cancel midway: the run stops, finished shots stay
  await startLongRun(page);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByText(/^Cancelled at step \d+ of 40/)).toBeVisible({ timeout: 60_000 });
  await expect(page.getByRole('img', { name: 'Shot 1, middle frame' })).toBeVisible();

  // export the video (WebCodecs + WebM muxer)
  const hasEncoder = await page.evaluate(() => typeof VideoEncoder !== 'undefined');
  if (hasEncoder) {
    await page.getByRole('combobox', { name: 'Video format' }).selectOption('webm');
    const [video] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export video' }).click(),
    ]);
    const bytes = readFileSync((await video.path())!);
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])); // EBML: a Matroska/WebM file
    // and it decodes: the browser's own <video> loads it, and its first frame is not blank
    const decoded = await decodeVideo(page, bytes, 'video/webm');
    expect(decoded.width).toBeGreaterThan(0);
    expect(decoded.height).toBeGreaterThan(0);
    expect(decoded.duration).toBeGreaterThan(0);
    expect(decoded.spread, 'the first decoded frame is one flat colour').toBeGreaterThan(8);
  }

  // reload: storyboard, shots and their versions are all still there
  await expect(page.locator('.save-state')).toHaveText('Saved');
  await page.reload();
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveValue(BOARD.shots[1].caption);
  await expect(page.getByRole('img', { name: 'Shot 1, middle frame' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Shot 2, middle frame' })).toBeVisible();
  await page.getByRole('slider', { name: 'Timeline' }).fill('2');
  await expect(page.locator('.take')).toHaveCount(2);
  // the model came from this browser's cache, not the network
  await expect(page.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 60_000 });
  expect(served.get('model.safetensors')).toBe(1);

  // the GPU device is lost: the studio says so, recovers, and keeps everything
  await expect(page.getByRole('status', { name: 'Engine status' })).toContainText('Engine ready');
  await page.evaluate(() => window.mocStudio!.loseDevice());
  await expect(
    page.locator('.banner').getByText(/^The GPU device was lost .*your storyboard and finished shots are kept/),
  ).toBeVisible();
  await expect(page.getByText(/The GPU device was lost once and the engine recovered/)).toBeVisible({
    timeout: 60_000,
  });
  await expect(page.getByRole('status', { name: 'Engine status' })).toContainText('Engine ready');
  await expect(page.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 60_000 });
  await expect(page.getByRole('img', { name: 'Shot 2, middle frame' })).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Shot 1 caption' })).toHaveValue(BOARD.shots[0].caption);

  expect(problems, problems.join('\n')).toEqual([]);
});
