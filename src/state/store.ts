/**
 * The studio's one zustand store, made of typed slices of small, serialisable state
 * (slices/*.ts). Tensors, GPU handles and the worker never live here; async actions
 * (actions/*.ts) hold them and write plain results into the store. Pixels live in media.ts.
 */
import { create } from 'zustand';
import { createEngineSlice, type EngineSlice } from './slices/engine.ts';
import { createGenerationSlice, type GenerationSlice } from './slices/generation.ts';
import { createPlayerSlice, type PlayerSlice } from './slices/player.ts';
import { createRoutingSlice, type RoutingSlice } from './slices/routing.ts';
import { createStoryboardSlice, type StoryboardSlice } from './slices/storyboard.ts';
import { createTakesSlice, type TakesSlice } from './slices/takes.ts';

export type { EnginePhase, EngineStatus } from './slices/engine.ts';
export { initialEngineStatus } from './slices/engine.ts';

export type StudioState = EngineSlice & StoryboardSlice & GenerationSlice & TakesSlice & RoutingSlice & PlayerSlice;

/** A fresh store (tests make their own; the page uses `useStudio`). */
export function createStudioStore() {
  return create<StudioState>()((...a) => ({
    ...createEngineSlice(...a),
    ...createStoryboardSlice(...a),
    ...createGenerationSlice(...a),
    ...createTakesSlice(...a),
    ...createRoutingSlice(...a),
    ...createPlayerSlice(...a),
  }));
}

export const useStudio = createStudioStore();
