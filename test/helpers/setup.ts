import { beforeAll } from 'vitest';
import { init } from '../../src/index.ts';

beforeAll(async () => {
  await init();
});
