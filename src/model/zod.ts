/**
 * zod, set up once for the studio: jitless, so schemas are checked by interpretation and zod never
 * probes `new Function` (which the Content-Security-Policy of the built app forbids and would
 * report as a violation). Import `z` from here, not from 'zod'.
 */
import { z } from 'zod';

z.config({ jitless: true });

export { z };
