/**
 * ffmpeg/ffprobe for `nerfad prepare`: probing a video (streams, frame rate, duration, frame timing), extracting
 * 25-fps frames (cropped and scaled) as PNG files and 16 kHz mono audio as WAV. ffmpeg runs as a separate program;
 * scripts/setup-prepare.sh installs it (Debian's package) when missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** A mistake in the user's input or setup: printed as it is, without a stack trace. */
export class PrepareError extends Error {
  constructor(message: string) { super(message); this.name = 'PrepareError'; }
}

function run(tool: string, args: string[], what: string): string {
  const result = spawnSync(tool, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new PrepareError(`${tool} is not installed; run scripts/setup-prepare.sh (as root it installs Debian's ffmpeg package; otherwise: sudo apt-get install -y ffmpeg)`);
  }
  if (result.status !== 0) {
    const text = (result.stderr || '').trim().split('\n').slice(-3).join(' | ');
    throw new PrepareError(`${what}: ${tool} failed (${text || `exit ${result.status}`})`);
  }
  return result.stdout;
}

export function hasFfmpeg(): boolean {
  return spawnSync('ffmpeg', ['-version'], { encoding: 'utf8' }).status === 0
    && spawnSync('ffprobe', ['-version'], { encoding: 'utf8' }).status === 0;
}

export interface VideoProbe {
  width: number;
  height: number;
  /** Seconds, of the video stream (else the container). */
  duration: number;
  /** Nominal frame rate (r_frame_rate) and the average (avg_frame_rate). */
  frameRate: number;
  averageFrameRate: number;
  hasAudio: boolean;
  audioRate: number;
  /** Rotation metadata in degrees (phones record portrait video as landscape + rotation); ffmpeg applies it. */
  rotation: number;
}

const rate = (text: string | undefined) => {
  const [a, b] = (text ?? '0/1').split('/').map(Number);
  return b ? a! / b : Number(a) || 0;
};

/** Probes `path`; clear errors when it is not a video or has no video stream. */
export function probeVideo(path: string): VideoProbe {
  if (!existsSync(path)) throw new PrepareError(`${path}: no such file`);
  const head = readFileSync(path).subarray(0, 16);
  let out: string;
  try {
    out = run('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', path], path);
  } catch (e) {
    if (e instanceof PrepareError && /ffprobe failed/.test(e.message)) {
      const text = head.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127));
      throw new PrepareError(`${path}: is not a video file ffmpeg can read${text ? ' (it looks like text)' : ''}`);
    }
    throw e;
  }
  const json = JSON.parse(out) as { streams?: Record<string, unknown>[]; format?: Record<string, unknown> };
  const streams = json.streams ?? [];
  // Cover art in audio files is a "video" stream with attached_pic: not a video.
  const video = streams.find((s) => s.codec_type === 'video' && !(s.disposition as Record<string, number> | undefined)?.attached_pic);
  const audio = streams.find((s) => s.codec_type === 'audio');
  if (!video) {
    const kinds = streams.map((s) => String(s.codec_type)).join(', ') || 'none';
    throw new PrepareError(`${path}: has no video stream (streams: ${kinds}); give a video of the talking person`);
  }
  const tags = (video.tags ?? {}) as Record<string, string>;
  const sideData = (video.side_data_list ?? []) as { rotation?: number }[];
  const rotation = Number(tags.rotate ?? sideData.find((d) => d.rotation !== undefined)?.rotation ?? 0);
  let width = Number(video.width), height = Number(video.height);
  if (Math.abs(rotation) % 180 === 90) [width, height] = [height, width];
  const duration = Number(video.duration ?? json.format?.duration ?? 0);
  return {
    width, height, duration, frameRate: rate(video.r_frame_rate as string), averageFrameRate: rate(video.avg_frame_rate as string),
    hasAudio: !!audio, audioRate: Number(audio?.sample_rate ?? 0), rotation,
  };
}

/** Presentation times (s) of the first `limit` video frames. */
export function frameTimes(path: string, limit = 500): number[] {
  const out = run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', `%+#${limit}`, '-show_entries', 'frame=pts_time,best_effort_timestamp_time', '-of', 'csv=p=0', path], path);
  return out.split('\n').map((l) => Number(l.split(',').find((v) => v && v !== 'N/A'))).filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
}

/**
 * Whether the frame timing is variable: more than 5 % of the intervals between consecutive frames are off the
 * median interval by over 25 %. Phones and screen recorders write such files; resampling them to 25 fps repeats
 * and drops frames unevenly, so lip motion and audio drift apart.
 */
export function variableFrameRate(times: readonly number[]): { variable: boolean; minMs: number; maxMs: number } {
  const gaps = times.slice(1).map((t, i) => t - times[i]!).filter((g) => g > 0);
  if (gaps.length < 3) return { variable: false, minMs: 0, maxMs: 0 };
  const median = [...gaps].sort((a, b) => a - b)[gaps.length >> 1]!;
  const off = gaps.filter((g) => Math.abs(g - median) > 0.25 * median).length;
  return { variable: off > 0.05 * gaps.length, minMs: Math.min(...gaps) * 1000, maxMs: Math.max(...gaps) * 1000 };
}

/** One frame at time `t` (s), uncropped, as a PNG file. */
export function extractStill(path: string, t: number, out: string): void {
  run('ffmpeg', ['-v', 'error', '-y', '-ss', String(t), '-i', path, '-frames:v', '1', '-pix_fmt', 'rgb24', out], path);
}

export interface Crop { x: number; y: number; side: number }

/** All frames resampled to `fps`, cropped to the square `crop` and scaled to size×size, as dir/000000.png … */
export function extractFrames(path: string, dir: string, fps: number, crop: Crop, size: number, outputOptions: string[] = []): void {
  const filter = `fps=${fps},crop=${crop.side}:${crop.side}:${crop.x}:${crop.y},scale=${size}:${size}:flags=area`;
  run('ffmpeg', ['-v', 'error', '-y', '-i', path, ...outputOptions, '-vf', filter, '-pix_fmt', 'rgb24', '-start_number', '0', `${dir}/%06d.png`], path);
}

/** The first audio stream, mixed to mono at `rate` Hz, as 16-bit PCM WAV. */
export function extractAudio(path: string, out: string, rate: number, outputOptions: string[] = []): void {
  run('ffmpeg', ['-v', 'error', '-y', '-i', path, ...outputOptions, '-vn', '-ac', '1', '-ar', String(rate), '-c:a', 'pcm_s16le', out], path);
}
