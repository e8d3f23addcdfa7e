/**
 * `nerfad prepare VIDEO --out DIR`: an ordinary talking-head video with sound → a nerfad clip (docs/dataset-format.md).
 *
 * Stages (each timed; seconds per frame are printed and kept in DIR/.prepare/timings.json):
 *   probe    ffprobe: a video stream, an audio stream, a constant frame rate, long enough (clear errors otherwise)
 *   crop     the first frame at full size: exactly one face, upright, big enough; the square crop around it (below)
 *   extract  ffmpeg: frames at 25 fps, cropped and scaled to size×size PNGs; audio as 16 kHz mono WAV
 *   track    per frame: the 468-point face mesh (detect once, then track; src/data/prepare/track.ts) and the person
 *            probability of the selfie segmentation model; appended to DIR/.prepare/track.jsonl frame by frame
 *   solve    frames without a face are an error that lists them (dropouts of ≤ 2 frames are interpolated); 68
 *            landmarks (mesh → iBUG map), head poses (rigid fit + smoothing, pose.ts), boxes (landmarks.ts), and AUs
 *            (landmarks.ts) measured on the 68 points of the frontalised mesh (each frame's mesh taken back into the
 *            head frame by its rigid fit), so head turns do not read as expressions
 *   plate    the background plate: per pixel, the median over frames where the selfie model sees no person (within
 *            a margin), holes (always covered by the person) filled by diffusion from their border
 *   write    masks, torso images and the clip through the format's writer; then the Data I loader validates it
 *
 * Resumable: everything lands in DIR/.prepare/ first (state.json records the video and options; a finished stage is
 * not redone; tracking resumes after the last frame in track.jsonl). Kill it and run the same command again.
 *
 * Crop: a square of side min(W, H, 3 × face width) centred on the face horizontally, with the face centre 40 % of
 * the way down (head and shoulders, like AD-NeRF's and ER-NeRF's 450/512 crops), moved to stay inside the frame.
 *
 * Intrinsics (estimated, documented): a video carries no focal length, and the face fit is weak-perspective, so
 * the focal length is assumed from a horizontal field of view of the source camera, `fov` degrees (default 55°,
 * typical of webcams and phone front cameras): f_src = (W_src / 2) / tan(fov / 2) source pixels; in the output,
 * fx = fy = f_src · size / crop side; (cx, cy) is the source image centre mapped through the crop and scale (it
 * moves off the output centre when the crop does). A wrong fov scales the recovered head distance, not the
 * rotations, and NeRF training is tolerant of it (AD-NeRF fits a focal length but ER-NeRF mostly keeps it fixed).
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { Progress } from '../../cli/progress.ts';
import { AUDIO_SAMPLE_RATE, loadClip, writeClip, type Image8, LANDMARKS } from '../format.ts';
import { decodeWav } from '../wav.ts';
import { FACE_OVAL, IBUG68_FROM_MESH, LIPS_LOWER_OUTER, LIPS_UPPER_OUTER } from '../synth/mesh-topology.ts';
import { extractAudio, extractFrames, extractStill, frameTimes, PrepareError, probeVideo, variableFrameRate, type Crop, type VideoProbe } from './ffmpeg.ts';
import { readImageFile, compositeOver, maskImage } from './images.ts';
import { boxesFromLandmarks, estimateAus, fillPolygon, type Box, type Point } from './landmarks.ts';
import { cameraToWorld, fitHeadPoses, frontalMeshes, headShape, meshToCamera, smoothPoses } from './pose.ts';
import { FaceTracker, type TrackedFace } from './track.ts';

export { PrepareError } from './ffmpeg.ts';

export interface PrepareOptions {
  video: string;
  out: string;
  /** Output frame side in pixels (default 512). */
  size?: number;
  /** Only the first `seconds` of the video (default: all). */
  seconds?: number;
  /** Assumed horizontal field of view of the source camera, degrees (default 55). */
  fov?: number;
  /** σ in frames of the pose smoothing (default 2; 0 = none). */
  smooth?: number;
  /** Shortest clip accepted, seconds (default 2; training wants minutes). */
  minSeconds?: number;
  /** Narrowest face accepted, in source pixels (default 64). */
  minFacePixels?: number;
  cropSize?: number;
  name?: string;
  /** Where messages and the progress go (default stdout). */
  write?: (text: string) => void;
  isTTY?: boolean;
  /** For tests: stop after tracking this many frames (as if interrupted). */
  stopAfterFrames?: number;
}

export interface PrepareResult {
  frameCount: number;
  /** Seconds per frame of each stage, this run (resumed stages count only what this run did). */
  secondsPerFrame: Record<string, number>;
  notes: string[];
  completed: boolean;
}

const FPS = 25;
const TRACK_FILE = 'track.jsonl';
/** Longest run of faceless frames (between tracked ones) that is interpolated rather than refused: 2 frames = 80 ms. */
const MAX_GAP = 2;

interface TrackLine { f: number; faces: number; score: number; box: number[] | null; mesh: number[] | null }

interface State {
  video: string; bytes: number; mtimeMs: number;
  options: { size: number; seconds: number | null; fov: number };
  crop?: Crop & { sourceWidth: number; sourceHeight: number };
  extracted?: number;
  audioSamples?: number;
}

const range = (frames: number[]): string => {
  const parts: string[] = [];
  for (let i = 0; i < frames.length;) {
    let j = i;
    while (j + 1 < frames.length && frames[j + 1] === frames[j]! + 1) j++;
    parts.push(i === j ? `${frames[i]} (${(frames[i]! / FPS).toFixed(2)} s)` : `${frames[i]}–${frames[j]} (${(frames[i]! / FPS).toFixed(2)}–${((frames[j]! + 1) / FPS).toFixed(2)} s)`);
    i = j + 1;
  }
  return parts.length > 12 ? `${parts.slice(0, 12).join(', ')}, … (${parts.length} runs)` : parts.join(', ');
};

/** Faces at least a quarter of the largest's area count as "another face". */
const significant = (faces: TrackedFace[]) => faces.filter((f) => f.score >= 0.5 && f.box[2] * f.box[3] >= 0.25 * faces[0]!.box[2] * faces[0]!.box[3]);

export async function prepareVideo(options: PrepareOptions): Promise<PrepareResult> {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const say = (line: string) => write(`prepare: ${line}\n`);
  const size = options.size ?? 512, fov = options.fov ?? 55, smooth = options.smooth ?? 2;
  const minSeconds = options.minSeconds ?? 2, minFace = options.minFacePixels ?? 64;
  const notes: string[] = [];
  const note = (line: string) => { notes.push(line); say(`note: ${line}`); };
  const times: Record<string, { seconds: number; frames: number }> = {};
  const timed = async <T>(stage: string, frames: number, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const result = await fn();
    const entry = times[stage] ?? { seconds: 0, frames: 0 };
    entry.seconds += (performance.now() - t0) / 1000; entry.frames += frames;
    times[stage] = entry;
    return result;
  };

  // --- probe
  const video = resolve(options.video);
  const probe: VideoProbe = await timed('probe', 0, () => probeVideo(video));
  if (!probe.hasAudio) throw new PrepareError(`${options.video}: has no audio stream; the model learns the mouth from the voice, so give a video with the person speaking (or add the sound: ffmpeg -i VIDEO -i SPEECH.wav -map 0:v -map 1:a -c:v copy OUT.mp4)`);
  const usable = Math.min(probe.duration, options.seconds ?? Infinity);
  if (!(usable >= minSeconds)) {
    throw new PrepareError(`${options.video}: is ${probe.duration.toFixed(2)} s long${options.seconds ? ` (using ${usable.toFixed(2)} s)` : ''}; need at least ${minSeconds} s (training wants 3–5 minutes of speech)`);
  }
  const vfr = variableFrameRate(frameTimes(video));
  if (vfr.variable) {
    throw new PrepareError(`${options.video}: has a variable frame rate (frame intervals from ${vfr.minMs.toFixed(1)} to ${vfr.maxMs.toFixed(1)} ms), so lips and sound would drift; convert it to a constant rate first: ffmpeg -i ${options.video} -vf fps=25 -c:a copy constant.mp4`);
  }
  if (usable < 60) note(`the clip is ${usable.toFixed(1)} s long; NeRF-AD and its anchors train on 3–5 minutes`);

  // --- state (resume)
  const work = join(options.out, '.prepare');
  const outExisted = existsSync(options.out);
  mkdirSync(work, { recursive: true });
  const stat = statSync(video);
  const fresh: State = { video, bytes: stat.size, mtimeMs: stat.mtimeMs, options: { size, seconds: options.seconds ?? null, fov } };
  const statePath = join(work, 'state.json');
  let state: State = fresh;
  if (existsSync(statePath)) {
    const old = JSON.parse(readFileSync(statePath, 'utf8')) as State;
    if (old.video !== fresh.video || old.bytes !== fresh.bytes || old.mtimeMs !== fresh.mtimeMs) {
      throw new PrepareError(`${options.out}: holds a preparation of ${old.video}${old.video === fresh.video ? ' as it was before the file changed' : ''}; use another --out, or delete ${work} to start over`);
    }
    if (JSON.stringify(old.options) !== JSON.stringify(fresh.options)) {
      throw new PrepareError(`${options.out}: holds a preparation of ${old.video} with other options (${JSON.stringify(old.options)}); use another --out, or delete ${work} to start over`);
    }
    state = old;
    say(`resuming in ${options.out}`);
  }
  const saveState = () => { writeFileSync(statePath + '.tmp', JSON.stringify(state, null, 1)); renameSync(statePath + '.tmp', statePath); };
  const resumed = existsSync(statePath);

  const tracker = await timed('load models', 0, () => FaceTracker.create());

  // --- crop from the first frame
  // state.json is first written once the crop is chosen: a video refused here leaves no half-made folder behind
  if (!state.crop) {
    try {
      await timed('crop', 0, async () => {
        const still = join(work, 'first-frame.png');
        extractStill(video, 0, still);
        const image = readImageFile(still);
        // The detector squeezes its input to a square: pad wide (or tall) frames to one, right and bottom, so faces
        // keep their shape and coordinates stay the same.
        // Large frames (4K) are shrunk by an integer factor k (box filter) to at most 1280 px for the detector.
        const k = Math.max(1, Math.ceil(Math.max(image.width, image.height) / 1280));
        const side0 = Math.ceil(Math.max(image.width, image.height) / k);
        const square = new Uint8Array(side0 * side0 * 3);
        for (let y = 0; y < Math.floor(image.height / k); y++) for (let x = 0; x < Math.floor(image.width / k); x++) {
          for (let c = 0; c < 3; c++) {
            let sum = 0;
            for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) sum += image.data[((y * k + dy) * image.width + x * k + dx) * 3 + c]!;
            square[(y * side0 + x) * 3 + c] = Math.round(sum / (k * k));
          }
        }
        const faces = (await tracker.faces({ width: side0, height: side0, channels: 3, data: square }, 1)).map((face) => ({
          ...face, box: face.box.map((v) => v * k) as typeof face.box, mesh: face.mesh.map((p) => p.map((v) => v * k) as typeof p),
        }));
        if (faces.length === 0) throw new PrepareError(`${options.video}: no face found in the first frame; start the video on the speaker's face (trim with ffmpeg -ss SECONDS)`);
        const big = significant(faces);
        if (big.length > 1) throw new PrepareError(`${options.video}: ${big.length} faces in the first frame; the video must show one person (crop it to the speaker: ffmpeg -vf crop=W:H:X:Y)`);
        // Eye line from the subject's right eye's outer corner (mesh 33, image left) to the left one's (263).
        const [rx, ry] = faces[0]!.mesh[33]!, [lx, ly] = faces[0]!.mesh[263]!;
        const roll = (Math.atan2(ly - ry, lx - rx) * 180) / Math.PI;
        if (Math.abs(roll) > 45) {
          const upsideDown = Math.abs(roll) > 135, turn = upsideDown ? 'hflip,vflip' : `transpose=${roll > 0 ? 2 : 1}`;
          throw new PrepareError(`${options.video}: the face is ${upsideDown ? 'upside down' : 'sideways'} (head roll ${roll.toFixed(0)}°); `
            + `is the video's rotation wrong? Turn it upright first, e.g. ffmpeg -i ${options.video} -vf ${turn} -c:a copy upright.mp4`);
        }
        const [bx, by, bw, bh] = faces[0]!.box;
        if (bw < minFace) {
          throw new PrepareError(`${options.video}: the face is ${bw.toFixed(0)} px wide in the ${image.width}×${image.height} video; need at least ${minFace} px (film closer, or use a higher resolution)`);
        }
        const side = Math.floor(Math.min(image.width, image.height, 3 * bw));
        const x = Math.round(Math.min(Math.max(0, bx + bw / 2 - side / 2), image.width - side));
        const y = Math.round(Math.min(Math.max(0, by + bh / 2 - 0.4 * side), image.height - side));
        state.crop = { x, y, side, sourceWidth: image.width, sourceHeight: image.height };
        saveState();
      });
    } catch (error) {
      if (!resumed) {
        rmSync(work, { recursive: true, force: true });
        if (!outExisted && readdirSync(options.out).length === 0) rmSync(options.out, { recursive: true, force: true });
      }
      throw error;
    }
  }
  const crop = state.crop!;
  const scale = size / crop.side;
  if (crop.side < size) note(`the crop is ${crop.side} px, scaled up to ${size}: use --size ${crop.side} or a sharper video for detail`);
  const focalSource = crop.sourceWidth / 2 / Math.tan((fov * Math.PI) / 360);
  const intrinsics = {
    fx: focalSource * scale, fy: focalSource * scale,
    cx: Math.min(size, Math.max(0, (crop.sourceWidth / 2 - crop.x) * scale)), cy: Math.min(size, Math.max(0, (crop.sourceHeight / 2 - crop.y) * scale)),
  };

  // --- extract
  const framesDir = join(work, 'frames'), personDir = join(work, 'person');
  if (state.extracted === undefined) {
    await timed('extract', 0, () => {
      mkdirSync(framesDir, { recursive: true });
      mkdirSync(personDir, { recursive: true });
      const cut = options.seconds ? ['-t', String(options.seconds)] : [];
      extractFrames(video, framesDir, FPS, crop, size, cut);
      extractAudio(video, join(work, 'audio.wav'), AUDIO_SAMPLE_RATE, cut);
      state.extracted = readdirSync(framesDir).filter((f) => /^\d{6}\.png$/.test(f)).length;
      saveState();
    });
    times.extract!.frames = state.extracted!;
  }
  const n = state.extracted!;
  if (n / FPS < minSeconds) throw new PrepareError(`${options.video}: only ${n} frames at 25 fps (${(n / FPS).toFixed(2)} s); need at least ${minSeconds} s`);
  const framePathOf = (f: number) => join(framesDir, `${String(f).padStart(6, '0')}.png`);
  const personPathOf = (f: number) => join(personDir, `${String(f).padStart(6, '0')}.png`);

  // --- track (resumable frame by frame)
  const trackPath = join(work, TRACK_FILE);
  const readTrack = (): TrackLine[] => {
    if (!existsSync(trackPath)) return [];
    const lines: TrackLine[] = [];
    for (const line of readFileSync(trackPath, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try { lines.push(JSON.parse(line) as TrackLine); } catch { break; }   // a line cut by an interruption
    }
    return lines.filter((l, i) => l.f === i);
  };
  let tracked = readTrack();
  if (tracked.length < n) {
    // rewrite without any partial last line, then append
    writeFileSync(trackPath, tracked.map((l) => JSON.stringify(l) + '\n').join(''));
    const progress = new Progress({ label: 'track', total: n, startStep: tracked.length, isTTY: options.isTTY ?? !!process.stdout.isTTY, write });
    const stopAt = Math.min(n, options.stopAfterFrames ?? n);
    times.track = { seconds: 0, frames: 0 };
    await timed('track', 0, async () => {
      for (let f = tracked.length; f < stopAt; f++) {
        const image = readImageFile(framePathOf(f));
        const faces = await tracker.faces(image);
        const person = await tracker.person(image);
        writeFileSync(personPathOf(f), PNG.sync.write(Object.assign(new PNG({ width: size, height: size }), { data: grayToRgba(person) }), { colorType: 0 }));
        const main = faces[0];
        const line: TrackLine = {
          f, faces: faces.length ? significant(faces).length : 0, score: main?.score ?? 0, box: main?.box ?? null,
          mesh: main ? main.mesh.flatMap((p) => p.map((v) => Math.round(v * 100) / 100)) : null,
        };
        appendFileSync(trackPath, JSON.stringify(line) + '\n');
        times.track!.frames++;
        progress.update(f + 1, `${main ? '' : 'no face '}${progress.recentRate.toFixed(2)} frames/s`);
      }
    });
    progress.finish();
    tracked = readTrack();
    if (tracked.length < n) {
      say(`stopped after ${tracked.length} of ${n} frames; run the same command again to continue`);
      return { frameCount: n, secondsPerFrame: perFrame(times), notes, completed: false };
    }
  }

  // --- solve
  const solved = await timed('solve', n, () => {
    // A tracker dropout of at most MAX_GAP frames between two tracked frames is bridged by linear interpolation of
    // the mesh (a blink of the tracker, not of the face); longer gaps are the user's to cut out.
    const trackedMeshes = tracked.map((l) => l.mesh);
    const bridged = bridgeGaps(trackedMeshes, MAX_GAP);
    tracked.forEach((l, f) => { l.mesh = trackedMeshes[f]!; });
    if (bridged.length) note(`no face in frames ${range(bridged)}: bridged by interpolating the neighbouring frames' meshes`);
    const missing = tracked.filter((l) => !l.mesh).map((l) => l.f);
    if (missing.length) {
      throw new PrepareError(`${options.video}: no face found in ${missing.length} of ${n} frames: ${range(missing)}; cut those parts out of the video (ffmpeg -ss START -to END) and run again`);
    }
    const several = tracked.filter((l) => l.faces > 1).map((l) => l.f);
    if (several.length > 0.1 * n) throw new PrepareError(`${options.video}: more than one face in ${several.length} frames (${range(several)}); the video must show one person`);
    if (several.length) note(`a second face appears in frames ${range(several)}; the largest face was tracked`);
    const meshes = tracked.map((l) => Array.from({ length: 468 }, (_, i) => [l.mesh![i * 3]!, l.mesh![i * 3 + 1]!, l.mesh![i * 3 + 2]!]));
    const landmarks = new Float32Array(n * LANDMARKS * 2);
    meshes.forEach((mesh, f) => IBUG68_FROM_MESH.forEach((v, l) => { landmarks[(f * LANDMARKS + l) * 2] = mesh[v]![0]!; landmarks[(f * LANDMARKS + l) * 2 + 1] = mesh[v]![1]!; }));
    const camera = meshes.map((m) => meshToCamera(m, intrinsics.cx, intrinsics.cy));
    const shape = headShape(camera);
    const raw = fitHeadPoses(camera, shape, intrinsics.fx);
    const smoothed = smoothPoses(raw, smooth);
    const poses = new Float32Array(n * 16);
    smoothed.forEach((p, f) => poses.set(cameraToWorld(p), f * 16));
    const rms = raw.map((p) => p.rmsPixels).sort((a, b) => a - b);
    note(`rigid head fit: median residual ${rms[rms.length >> 1]!.toFixed(2)} px over the mesh points above the nose tip (tracking noise and expression)`);
    const faceBox = (f: number): Box => {
      const oval = FACE_OVAL.map((v) => meshes[f]![v]!);
      const xs = oval.map((p) => p[0]!), ys = oval.map((p) => p[1]!);
      return [Math.floor(Math.min(...xs)), Math.floor(Math.min(...ys)), Math.ceil(Math.max(...xs)), Math.ceil(Math.max(...ys))];
    };
    // AUs from the frontalised mesh (head frame, y flipped to point down like image rows), free of head pose
    const frontal = new Float32Array(n * LANDMARKS * 2);
    frontalMeshes(camera, shape).forEach((mesh, f) => IBUG68_FROM_MESH.forEach((v, l) => {
      frontal[(f * LANDMARKS + l) * 2] = mesh[v]![0]; frontal[(f * LANDMARKS + l) * 2 + 1] = -mesh[v]![1];
    }));
    return { meshes, landmarks, poses, aus: estimateAus(frontal, n), boxes: boxesFromLandmarks(landmarks, n, size, size, faceBox) };
  });

  // --- masks (from the mesh and the person probability) and the background plate
  const masksOf = (f: number) => {
    const mesh = solved.meshes[f]!;
    const oval: Point[] = FACE_OVAL.map((v) => [mesh[v]![0]!, mesh[v]![1]!]);
    const cx = oval.reduce((s, p) => s + p[0], 0) / oval.length, cy = oval.reduce((s, p) => s + p[1], 0) / oval.length;
    // head region: the face oval widened 35 % (ears, hair at the sides) and doubled above its centre (hair), not
    // lowered (the neck belongs to the torso, as in AD-NeRF's parsing)
    const region = fillPolygon(new Uint8Array(size * size), size, size, oval.map(([x, y]) => [cx + 1.35 * (x - cx), cy + (y < cy ? 2 : 1.02) * (y - cy)] as Point));
    const person = readImageFile(personPathOf(f)).data;
    const head = new Uint8Array(size * size);
    for (let p = 0; p < head.length; p++) head[p] = region[p] ? person[p * 3]! : 0;
    const face = fillPolygon(new Uint8Array(size * size), size, size, oval);
    const lipRing = [...LIPS_UPPER_OUTER, ...[...LIPS_LOWER_OUTER].reverse().slice(1, -1)].map((v) => [mesh[v]![0]!, mesh[v]![1]!] as Point);
    const lip = fillPolygon(new Uint8Array(size * size), size, size, lipRing);
    return { head, face, lip, person };
  };
  const background = await timed('plate', n, () => backgroundPlate(n, size, framePathOf, (f) => readImageFile(personPathOf(f)).data, note));

  // --- audio
  const wav = decodeWav(readFileSync(join(work, 'audio.wav')), 'audio.wav');
  const samples = Math.round((n * AUDIO_SAMPLE_RATE) / FPS);
  if (Math.abs(wav.mono.length - samples) > AUDIO_SAMPLE_RATE / FPS) note(`the audio lasts ${(wav.mono.length / AUDIO_SAMPLE_RATE).toFixed(2)} s, the frames ${(n / FPS).toFixed(2)} s: fitted to the frames`);
  const audio = new Float32Array(samples);
  audio.set(wav.mono.subarray(0, samples));

  // --- write
  const valCount = Math.max(1, Math.round(n / 11));   // ER-NeRF's split: the last 1/11 of the frames for validation
  const split = { train: Array.from({ length: n - valCount }, (_, i) => i), val: Array.from({ length: valCount }, (_, i) => n - valCount + i) };
  let cached: { f: number; frame: Image8; m: ReturnType<typeof masksOf> } | null = null;
  const get = (f: number) => {
    if (cached?.f !== f) cached = { f, frame: readImageFile(framePathOf(f)), m: masksOf(f) };
    return cached;
  };
  await timed('write', n, () => writeClip(options.out, {
    info: {
      name: options.name ?? basename(options.video).replace(/\.[^.]+$/, ''), fps: FPS, frameCount: n, width: size, height: size, intrinsics,
      cropSize: options.cropSize ?? 64, split,
      source: `nerfad prepare of ${basename(video)} (crop ${crop.side} px at (${crop.x}, ${crop.y}) of ${crop.sourceWidth}×${crop.sourceHeight}, scaled to ${size}; `
        + `focal from an assumed ${fov}° horizontal field of view; poses smoothed σ = ${smooth} frames; AUs approximate OpenFace's from landmark geometry)`,
    },
    tracks: { poses: solved.poses, landmarks: solved.landmarks, aus: solved.aus, boxes: solved.boxes },
    audio, background,
    frames: (f) => get(f).frame,
    // the head grown by ~1 % of the frame, so no rim of hair stays around the hole in the torso image
    torso: (f) => compositeOver(background, dilate(get(f).m.head, size, Math.max(1, Math.round(size / 100)), 1), get(f).frame),
    masks: {
      head: (f) => maskImage(get(f).m.head, size, size),
      face: (f) => maskImage(get(f).m.face, size, size),
      lip: (f) => maskImage(get(f).m.lip, size, size),
    },
  }));
  await timed('validate', n, () => loadClip(options.out));
  const secondsPerFrame = perFrame(times);
  const seconds = Object.fromEntries(Object.entries(times).map(([k, t]) => [k, t.seconds]));
  writeFileSync(join(work, 'timings.json'), JSON.stringify({ frames: n, secondsPerFrame, seconds }, null, 1) + '\n');
  say(`${n} frames (${(n / FPS).toFixed(2)} s) in ${options.out}; seconds per frame: ${Object.entries(secondsPerFrame).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
  return { frameCount: n, secondsPerFrame, notes, completed: true };
}

function perFrame(times: Record<string, { seconds: number; frames: number }>): Record<string, number> {
  return Object.fromEntries(Object.entries(times).filter(([, t]) => t.frames > 0).map(([k, t]) => [k, t.seconds / t.frames]));
}

function grayToRgba(gray: Uint8Array): Buffer {
  const out = Buffer.alloc(gray.length * 4);
  for (let i = 0; i < gray.length; i++) { out[i * 4] = out[i * 4 + 1] = out[i * 4 + 2] = gray[i]!; out[i * 4 + 3] = 255; }
  return out;
}

/**
 * The background plate: per pixel and channel, the median over up to 50 frames spread over the clip of the values
 * where the person probability is below 25 % (a pixel the person never leaves has no sample); holes are filled by
 * push-pull interpolation (pushPullFill), which is smooth but has no texture.
 */
export function backgroundPlate(n: number, size: number, framePath: (f: number) => string, person: (f: number) => Uint8Array, note: (line: string) => void = () => {}): Image8 {
  const picks = Array.from(new Set(Array.from({ length: Math.min(50, n) }, (_, k) => Math.floor(((k + 0.5) * n) / Math.min(50, n)))));
  // the person map grown by ~1 % of the frame (max filter), so hair edges the model half-misses stay out of the plate
  const samples = picks.map((f) => ({ rgb: readImageFile(framePath(f)).data, p: dilate(person(f), size, Math.max(1, Math.round(size / 100))) }));
  const data = new Uint8Array(size * size * 3);
  const known = new Uint8Array(size * size);
  const values: number[][] = [[], [], []];
  let holes = 0;
  for (let p = 0; p < size * size; p++) {
    values[0]!.length = values[1]!.length = values[2]!.length = 0;
    for (const s of samples) {
      if (s.p[p]! < 64) for (let c = 0; c < 3; c++) values[c]!.push(s.rgb[p * 3 + c]!);
    }
    if (values[0]!.length === 0) { holes++; continue; }
    known[p] = 1;
    for (let c = 0; c < 3; c++) { const v = values[c]!.sort((a, b) => a - b); data[p * 3 + c] = v[v.length >> 1]!; }
  }
  if (holes === size * size) throw new PrepareError('the person covers the whole frame in every frame: no background to learn; film with some background around the head');
  if (holes) {
    note(`background plate: ${(100 * holes / (size * size)).toFixed(1)} % of the pixels are always behind the person, filled smoothly from around them`);
    const value = pushPullFill(Float32Array.from(data), known, size, size);
    for (let i = 0; i < data.length; i++) data[i] = Math.round(value[i]!);
  }
  return { width: size, height: size, channels: 3, data };
}

/**
 * Fills the pixels with known[p] = 0 of an RGB float image by push-pull: average the known pixels 2×2 into a
 * half-size image (recursively, until everything is known), then fill each unknown pixel bilinearly from the
 * coarser level. Known pixels keep their values.
 */
export function pushPullFill(value: Float32Array, known: Uint8Array, width: number, height: number): Float32Array {
  if (known.every((k) => k) || width * height === 1) return value;
  const w2 = Math.ceil(width / 2), h2 = Math.ceil(height / 2);
  const coarse = new Float32Array(w2 * h2 * 3), coarseKnown = new Uint8Array(w2 * h2);
  for (let y = 0; y < h2; y++) for (let x = 0; x < w2; x++) {
    let n = 0; const sum = [0, 0, 0];
    for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) {
      const sx = 2 * x + dx, sy = 2 * y + dy;
      if (sx >= width || sy >= height || !known[sy * width + sx]) continue;
      n++;
      for (let c = 0; c < 3; c++) sum[c]! += value[(sy * width + sx) * 3 + c]!;
    }
    if (n) { coarseKnown[y * w2 + x] = 1; for (let c = 0; c < 3; c++) coarse[(y * w2 + x) * 3 + c] = sum[c]! / n; }
  }
  if (!coarseKnown.some((k) => k)) return value;
  const filled = pushPullFill(coarse, coarseKnown, w2, h2);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    if (known[y * width + x]) continue;
    // fine pixel centre in coarse pixel coordinates
    const fx = Math.min(Math.max((x + 0.5) / 2 - 0.5, 0), w2 - 1), fy = Math.min(Math.max((y + 0.5) / 2 - 0.5, 0), h2 - 1);
    const x0 = Math.floor(fx), y0 = Math.floor(fy), x1 = Math.min(x0 + 1, w2 - 1), y1 = Math.min(y0 + 1, h2 - 1), ax = fx - x0, ay = fy - y0;
    for (let c = 0; c < 3; c++) {
      const at = (xx: number, yy: number) => filled[(yy * w2 + xx) * 3 + c]!;
      value[(y * width + x) * 3 + c] = (at(x0, y0) * (1 - ax) + at(x1, y0) * ax) * (1 - ay) + (at(x0, y1) * (1 - ax) + at(x1, y1) * ax) * ay;
    }
  }
  return value;
}

/** Max filter of radius r over channel 0 of a grey image with `stride` bytes per pixel (3: as the person PNGs read back). */
function dilate(rgb: Uint8Array, size: number, r: number, stride = 3): Uint8Array {
  const rows = new Uint8Array(size * size), out = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    let m = 0;
    for (let d = Math.max(0, x - r); d <= Math.min(size - 1, x + r); d++) m = Math.max(m, rgb[(y * size + d) * stride]!);
    rows[y * size + x] = m;
  }
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    let m = 0;
    for (let d = Math.max(0, y - r); d <= Math.min(size - 1, y + r); d++) m = Math.max(m, rows[d * size + x]!);
    out[y * size + x] = m;
  }
  return out;
}

/**
 * Fills runs of at most `maxGap` missing entries that have a present entry on both sides by linear interpolation,
 * in place; returns the indices filled. Longer runs, and runs at the start or end, stay missing.
 */
export function bridgeGaps(meshes: (number[] | null)[], maxGap: number): number[] {
  const filled: number[] = [];
  for (let f = 1; f < meshes.length; f++) {
    if (meshes[f] || !meshes[f - 1]) continue;
    let end = f;
    while (end < meshes.length && !meshes[end]) end++;
    if (end < meshes.length && end - f <= maxGap) {
      const a = meshes[f - 1]!, b = meshes[end]!;
      for (let g = f; g < end; g++) {
        const t = (g - f + 1) / (end - f + 1);
        meshes[g] = a.map((v, i) => v + (b[i]! - v) * t);
        filled.push(g);
      }
    }
    f = end;
  }
  return filled;
}
