import { describe, expect, it } from 'vitest';
import { animate, blinkOnsets, frameTime, speechAusAt, visemeOf } from '../src/data/synth/animation.ts';
import { festivalAvailable, parseFestivalSegs, readPcm16Wav, speakSentences, writePcm16Wav } from '../src/data/synth/tts.ts';
import { Rng } from '../src/tensor/random.ts';

// Festival's segs for "Hello world, this is a test." (hand-copied timings, so these tests need no TTS installed).
const SEGS = `#
0.2200 100 pau
0.2871 100 hh
0.3294 100 ax
0.4111 100 l
0.5615 100 ow
0.6370 100 w
0.7374 100 er
0.8249 100 l
0.8945 100 d
1.1145 100 pau
1.1434 100 dh
1.1944 100 ax
1.2906 100 s
1.3499 100 ih
1.4365 100 z
1.4876 100 ax
1.5911 100 t
1.7854 100 eh
1.9043 100 s
2.0032 100 t
2.4520 100 pau
`;

describe('synth: festival segments', () => {
  it('parses end times into contiguous [start, end) segments', () => {
    const segs = parseFestivalSegs(SEGS);
    expect(segs).toHaveLength(21);
    expect(segs[0]).toEqual({ phoneme: 'pau', start: 0, end: 0.22 });
    expect(segs[4]).toEqual({ phoneme: 'ow', start: 0.4111, end: 0.5615 });
    for (let i = 1; i < segs.length; i++) expect(segs[i]!.start).toBe(segs[i - 1]!.end);
  });
  it('rejects malformed lines', () => {
    expect(() => parseFestivalSegs('#\n0.5 100 aa\n0.2 100 b\n')).toThrow(/backwards/);
    expect(() => parseFestivalSegs('#\nxyz\n')).toThrow(/bad line/);
  });
  it('round-trips 16-bit WAV', () => {
    const x = new Float32Array([0, 0.5, -0.5, 0.25, -1]);
    const back = readPcm16Wav(writePcm16Wav(x, 16000));
    expect(back.sampleRate).toBe(16000);
    for (let i = 0; i < x.length; i++) expect(back.samples[i]).toBeCloseTo(x[i]!, 4);
  });
});

describe('synth: visemes → AUs', () => {
  const segs = parseFestivalSegs(SEGS);
  const at = (phone: string) => { const s = segs.find((x) => x.phoneme === phone)!; return 0.5 * (s.start + s.end); };

  it('maps phones to visemes', () => {
    expect(visemeOf('m').name).toBe('bilabial');
    expect(visemeOf('AA').name).toBe('open');
    expect(visemeOf('pau').name).toBe('rest');
  });
  it('opens the jaw on vowels and rests in pauses', () => {
    const vowel = speechAusAt(segs, at('ow'));
    const pause = speechAusAt(segs, 0.05);
    expect(vowel.AU26).toBeGreaterThan(1);
    expect(vowel.AU25).toBeGreaterThan(1.5);
    expect(pause.AU25).toBeLessThan(0.3);
    expect(pause.AU26).toBeLessThan(0.3);
  });
  it('closes the lips on a bilabial between open vowels (dominance)', () => {
    const bab = [
      { phoneme: 'aa', start: 0, end: 0.2 }, { phoneme: 'b', start: 0.2, end: 0.26 }, { phoneme: 'aa', start: 0.26, end: 0.46 },
    ];
    expect(speechAusAt(bab, 0.23).AU25).toBeLessThan(0.8);
    expect(speechAusAt(bab, 0.1).AU25).toBeGreaterThan(3);
  });
  it('is smooth: frame-to-frame change stays bounded (coarticulation)', () => {
    let maxStep = 0, prev = speechAusAt(segs, frameTime(0, 25));
    for (let i = 1; i < 60; i++) {
      const cur = speechAusAt(segs, frameTime(i, 25));
      maxStep = Math.max(maxStep, Math.abs(cur.AU26 - prev.AU26), Math.abs(cur.AU25 - prev.AU25));
      prev = cur;
    }
    expect(maxStep).toBeLessThan(3);
    expect(maxStep).toBeGreaterThan(0.2);
  });
  it('blinks at natural intervals, deterministically per seed', () => {
    const a = blinkOnsets(120, new Rng(3)), b = blinkOnsets(120, new Rng(3)), c = blinkOnsets(120, new Rng(4));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const perMinute = a.length / 2;
    expect(perMinute).toBeGreaterThan(8);
    expect(perMinute).toBeLessThan(25);
    for (let i = 1; i < a.length; i++) expect(a[i]! - a[i - 1]!).toBeGreaterThanOrEqual(2);
  });
  it('animates small, smooth head motion and stays within AU range', () => {
    const anim = animate(segs, 2.45, 25, 7);
    expect(anim.frameCount).toBe(61);
    for (let i = 0; i < anim.frameCount; i++) {
      const h = anim.head[i]!;
      expect(Math.abs(h.yaw)).toBeLessThanOrEqual(4);
      expect(Math.abs(h.pitch)).toBeLessThanOrEqual(2.5);
      if (i > 0) expect(Math.abs(h.yaw - anim.head[i - 1]!.yaw)).toBeLessThan(0.5);
      for (const v of Object.values(anim.aus[i]!)) { expect(v).toBeGreaterThanOrEqual(0); expect(v).toBeLessThanOrEqual(5); }
    }
    expect(animate(segs, 2.45, 25, 7)).toEqual(anim);
  });
});

describe('synth: festival (needs the festival program)', () => {
  const available = festivalAvailable();
  if (!available) console.log('skipping festival test: festival is not installed (bash scripts/setup-synth.sh)');
  it.skipIf(!available)('speaks sentences with contiguous timings that cover the audio', () => {
    const speech = speakSentences(['Hello there.', 'A second sentence.']);
    const duration = speech.samples.length / speech.sampleRate;
    expect(speech.segments[0]!.start).toBe(0);
    expect(speech.segments[speech.segments.length - 1]!.end).toBeCloseTo(duration, 3);
    for (let i = 1; i < speech.segments.length; i++) expect(speech.segments[i]!.start).toBeCloseTo(speech.segments[i - 1]!.end, 9);
    // Voiced vowels are loud, pauses quiet.
    const rms = (a: number, b: number) => {
      let s = 0; const i0 = Math.floor(a * speech.sampleRate), i1 = Math.floor(b * speech.sampleRate);
      for (let i = i0; i < i1; i++) s += speech.samples[i]! ** 2;
      return Math.sqrt(s / Math.max(1, i1 - i0));
    };
    const vowels = speech.segments.filter((s) => visemeOf(s.phoneme).name === 'open' || visemeOf(s.phoneme).name === 'mid');
    const pauses = speech.segments.filter((s) => s.phoneme === 'pau');
    const vowelRms = vowels.reduce((m, s) => m + rms(s.start, s.end), 0) / vowels.length;
    const pauseRms = pauses.reduce((m, s) => m + rms(s.start, s.end), 0) / pauses.length;
    expect(vowelRms).toBeGreaterThan(5 * pauseRms);
  });
});
