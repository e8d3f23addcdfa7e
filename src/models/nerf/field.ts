/**
 * Radiance fields: maps from sample points and view directions to raw density and raw colour, the inputs of
 * volume rendering. A field is a Module with `forward(points [P, 3], dirs [P, 3]) → { sigmaRaw [P], rgbRaw [P, 3] }`.
 *
 * `NerfMLP` is the faithful backbone of NeRF / AD-NeRF / DFRF (NeRF-AD's F_θ without its conditioning inputs):
 * γ(x) with 10 frequencies (63 values), `depth` × `width` ReLU layers with the input concatenated again after layer
 * `skip`, a density head, and a view branch: [feature `width`, γ(d) with 4 frequencies (27)] → `width/2` ReLU → RGB.
 * NeRF-AD's configuration is depth 8, width 256, skip 4; smaller ones train faster on a CPU adapter.
 */
import { Module } from '../module.ts';
import { Linear, MLP } from '../linear.ts';
import { defaultGenerator } from '../init.ts';
import type { Rng } from '../../tensor/random.ts';
import { Tensor } from '../../tensor/tensor.ts';
import { concat, narrow } from '../../ops/indexing.ts';
import { frequencyEncode, shEncode } from '../../ops/nerf.ts';
import { affine, mul } from '../../ops/elementwise.ts';
import { hashGrid, hashGridF16, hashGridPackF16, hashGridTable, type HashGridConfig } from '../../ops/encoding.ts';
import { isGradEnabled, noGrad } from '../../autograd/tape.ts';
import { keep } from '../../tensor/scope.ts';
import { runtime } from '../../kernels/runtime/runtime.ts';
import type { HashTablePrecision } from '../../kernels/encoding/hashgrid.ts';
import { reshape } from '../../ops/shape.ts';
import type { RowsAt } from '../../ops/mlp.ts';

export interface FieldOutput {
  /** [P] raw density (activated by the renderer). */
  sigmaRaw: Tensor;
  /** [P, 3] raw colour (before the sigmoid). */
  rgbRaw: Tensor;
}

export interface NerfMLPOptions {
  depth?: number;
  width?: number;
  /** Index of the layer after which γ(x) is concatenated again (AD-NeRF: 4); -1 for none. */
  skip?: number;
  positionFrequencies?: number;
  directionFrequencies?: number;
  /** Points are divided by this before encoding, so the scene's bounding ball maps into [−1, 1]. */
  bound?: number;
  rng?: Rng;
}

export class NerfMLP extends Module<[Tensor, Tensor], FieldOutput> {
  readonly layers: Linear[] = [];
  readonly densityHead: Linear;
  readonly feature: Linear;
  readonly viewLayer: Linear;
  readonly colourHead: Linear;
  readonly options: Required<Omit<NerfMLPOptions, 'rng'>>;

  constructor(options: NerfMLPOptions = {}) {
    super();
    const o = {
      depth: options.depth ?? 8,
      width: options.width ?? 256,
      skip: options.skip ?? 4,
      positionFrequencies: options.positionFrequencies ?? 10,
      directionFrequencies: options.directionFrequencies ?? 4,
      bound: options.bound ?? 1,
    };
    this.options = o;
    const rng = options.rng ?? defaultGenerator();
    const encoded = 3 * (1 + 2 * o.positionFrequencies);
    const viewEncoded = 3 * (1 + 2 * o.directionFrequencies);
    for (let l = 0; l < o.depth; l++) {
      const inputs = l === 0 ? encoded : l === o.skip + 1 ? o.width + encoded : o.width;
      this.layers.push(this.addModule(`layer${l}`, new Linear(inputs, o.width, { activation: 'relu', rng })));
    }
    this.densityHead = this.addModule('density', new Linear(o.width, 1, { rng }));
    this.feature = this.addModule('feature', new Linear(o.width, o.width, { rng }));
    this.viewLayer = this.addModule('view', new Linear(o.width + viewEncoded, o.width / 2, { activation: 'relu', rng }));
    this.colourHead = this.addModule('colour', new Linear(o.width / 2, 3, { rng }));
  }

  protected override describe(): string {
    const o = this.options;
    return `NerfMLP(${o.depth}×${o.width}, skip ${o.skip}, γ ${o.positionFrequencies}/${o.directionFrequencies})`;
  }

  forward(points: Tensor, dirs: Tensor): FieldOutput {
    const o = this.options;
    const encoded = frequencyEncode(o.bound === 1 ? points : mul(points, 1 / o.bound), o.positionFrequencies);
    let h = encoded;
    this.layers.forEach((layer, l) => {
      if (l === o.skip + 1) h = concat([encoded, h], 1);
      h = layer.forward(h);
    });
    const sigmaRaw = reshape(this.densityHead.forward(h), [-1]);
    const view = concat([this.feature.forward(h), frequencyEncode(dirs, o.directionFrequencies)], 1);
    const rgbRaw = this.colourHead.forward(this.viewLayer.forward(view));
    return { sigmaRaw, rgbRaw };
  }
}

export interface HashFieldOptions {
  grid?: Partial<HashGridConfig>;
  /** Hidden width of both small MLPs (instant-ngp: 64). */
  width?: number;
  /** Geometry features passed from the density MLP to the colour MLP (instant-ngp: 15). */
  geometryFeatures?: number;
  /** Scene bounding box half-size: points in [−bound, bound]³ map to the grid's unit cube. */
  bound?: number;
  rng?: Rng;
}

/**
 * The fast backbone (instant-ngp / torch-ngp style): a 3-D multiresolution hash grid → density MLP (one hidden
 * layer) → [σ_raw, geometry features]; [SH₄(d) 16, geometry] → colour MLP (two hidden layers) → RGB. Use the
 * renderer's 'exp' density activation with it (instant-ngp's trunc_exp without the truncation).
 */
export class HashField extends Module<[Tensor, Tensor], FieldOutput> {
  readonly table: Tensor;
  readonly gridConfig: HashGridConfig;
  readonly density: MLP;
  readonly colour: MLP;
  readonly bound: number;
  readonly geometryFeatures: number;
  /** The f16 copy of the table and the table buffer's write count it was made at (`tableF16`). */
  private tableCopyF16: { packed: Tensor; writes: number; buffer: number } | null = null;

  constructor(options: HashFieldOptions = {}) {
    super();
    const rng = options.rng ?? defaultGenerator();
    this.gridConfig = {
      dims: 3,
      features: 2,
      levels: 16,
      log2TableSize: 19,
      baseResolution: 16,
      maxResolution: 1024,
      ...options.grid,
    } as HashGridConfig;
    const width = options.width ?? 64;
    this.geometryFeatures = options.geometryFeatures ?? 15;
    this.bound = options.bound ?? 1;
    this.table = this.addParameter('table', hashGridTable(this.gridConfig, rng));
    const encoded = this.gridConfig.levels * this.gridConfig.features;
    this.density = this.addModule('density', new MLP([encoded, width, 1 + this.geometryFeatures], { activation: 'relu', rng }));
    this.colour = this.addModule('colour', new MLP([16 + this.geometryFeatures, width, width, 3], { activation: 'relu', rng }));
  }

  protected override describe(): string {
    const g = this.gridConfig;
    return `HashField(${g.levels}×${g.features} levels, 2^${g.log2TableSize}, res ${g.baseResolution}…${g.maxResolution ?? ''})`;
  }

  /** Raw density alone [P] (the occupancy grid's queries: no colour branch). */
  densityRaw(points: Tensor): Tensor {
    return this.densityFeatures(points).sigmaRaw;
  }

  forward(points: Tensor, dirs: Tensor): FieldOutput {
    const { sigmaRaw, hidden } = this.densityFeatures(points);
    return { sigmaRaw, rgbRaw: this.colourFrom(dirs, hidden) };
  }

  /**
   * The first half of `forward`: σ_raw [P] and the density MLP's whole output `hidden` [P, 1 + geometryFeatures]
   * (column 0 is σ_raw, the rest feed the colour MLP). With `colourFrom`, a renderer can colour only the samples
   * compositing will read.
   */
  densityFeatures(points: Tensor, options: { table?: HashTablePrecision } = {}): { sigmaRaw: Tensor; hidden: Tensor } {
    // [−bound, bound]³ → [0, 1]³ (the grid clamps anything outside).
    const unit = affine(points, 0.5 / this.bound, 0.5);
    const f16 = options.table === 'f16' && this.gridConfig.features !== 1;
    if (f16 && isGradEnabled() && this.table.requiresGrad) {
      throw new Error('HashField.densityFeatures: the f16 table is for rendering (no gradient reaches the table): call it under noGrad');
    }
    const encoded = f16 ? hashGridF16(unit, this.tableF16(), this.gridConfig) : hashGrid(unit, this.table, this.gridConfig);
    const hidden = this.density.forward(encoded);
    return { sigmaRaw: reshape(narrow(hidden, 1, 0, 1), [-1]), hidden };
  }

  /**
   * The table's f16 copy (`hashGridPackF16`, for rendering: src/kernels/encoding/hashgrid.ts says why), made again
   * only when the table's buffer has been written since the last one (an optimizer step, a checkpoint load), so
   * the frames rendered between two training steps pack it once. Owned by the field.
   */
  tableF16(): Tensor {
    const rt = runtime();
    const writes = rt.writeCount(this.table.view);
    const buffer = this.table.view.pooled.id;
    const cached = this.tableCopyF16;
    if (cached && cached.writes === writes && cached.buffer === buffer) return cached.packed;
    cached?.packed.dispose();
    const packed = keep(noGrad(() => hashGridPackF16(this.table, this.gridConfig)));
    this.tableCopyF16 = { packed, writes, buffer };
    return packed;
  }

  override dispose(): void {
    this.tableCopyF16?.packed.dispose();
    this.tableCopyF16 = null;
    super.dispose();
  }

  /**
   * The second half of `forward`: raw colour [P, 3] from unit directions [P, 3] and `densityFeatures`' hidden rows;
   * with `at`, only the rows at.index are coloured (the others are 0).
   */
  colourFrom(dirs: Tensor, hidden: Tensor, at?: RowsAt): Tensor {
    // concat([SH(d), hidden[:, 1:]]) — read in place by the colour MLP where no gradient is recorded.
    return this.colour.forwardColumns([shEncode(dirs, 4), { tensor: hidden, start: 1, length: this.geometryFeatures }], at);
  }
}
