use super::*;

fn batch(n: usize, h: usize, w: usize) -> HostBatch {
    let len = 3 * h * w;
    let pixels = |m: usize| {
        (0..n * len)
            .map(|i| ((i * 7 + m * 13) % 23) as f32 / 11.0 - 1.0)
            .collect()
    };
    HostBatch {
        pixels: [pixels(0), pixels(1), pixels(2)],
        size: [h as u32, w as u32],
        indices: (0..n).map(|i| 100 + i).collect(),
        labels: vec![0; n],
        pids: vec![0; n],
        camids: vec![0; n],
        sceneids: vec![-1; n],
        captions: std::array::from_fn(|m| (0..n).map(|i| format!("caption {m} {i}.")).collect()),
        present: vec![[true; 3]; n],
        sketch: None,
        sketch_present: vec![false; n],
        first_position: 0,
    }
}

fn enabled() -> ModalityAugConfig {
    ModalityAugConfig {
        enabled: true,
        ..ModalityAugConfig::default()
    }
}

#[test]
fn dropout_is_reproducible_from_the_seed_and_never_drops_everything() {
    let cfg = enabled();
    let run = |seed, step| {
        let mut b = batch(64, 4, 2);
        let presence = augment_batch(&mut b, &cfg, Normalization::Half, seed, step).unwrap();
        (presence, b)
    };
    let (a, batch_a) = run(7, 3);
    let (b, batch_b) = run(7, 3);
    assert_eq!(a, b);
    assert_eq!(batch_a, batch_b);
    assert_ne!(a.present, run(8, 3).0.present);
    assert_ne!(a.present, run(7, 4).0.present);
    let mut full = 0;
    let mut patterns = std::collections::HashSet::new();
    for step in 0..20 {
        for p in run(1, step).0.present {
            assert!(p.iter().any(|&v| v), "all modalities dropped");
            if p == [true; 3] {
                full += 1;
            } else {
                patterns.insert(p);
            }
        }
    }
    // 1280 draws with p_full 0.5: the full count is 640 +- 3 sigma (sigma ~ 17.9).
    assert!((586..=694).contains(&full), "{full} full samples of 1280");
    assert_eq!(patterns.len(), 6, "every missing pattern drawn");
}

#[test]
fn a_dropped_modality_loses_its_caption_but_keeps_its_pixels() {
    let cfg = ModalityAugConfig {
        uncertain_prob: 0.0,
        ..enabled()
    };
    let original = batch(32, 4, 2);
    let mut b = original.clone();
    let presence = augment_batch(&mut b, &cfg, Normalization::Half, 5, 0).unwrap();
    assert_eq!(b.pixels, original.pixels);
    let mut dropped = 0;
    for (i, p) in presence.present.iter().enumerate() {
        assert_eq!(presence.real[i], [true; 3]);
        for (captions, &kept) in b.captions.iter().zip(p) {
            assert_eq!(captions[i].is_empty(), !kept);
            dropped += usize::from(!kept);
        }
    }
    assert!(dropped > 0);
}

#[test]
fn channel_aug_replaces_a_dropped_infrared_modality_from_rgb() {
    let cfg = ModalityAugConfig {
        pixel_synth: PixelSynth::ChannelAug,
        pixel_synth_prob: 1.0,
        uncertain_prob: 0.0,
        ..enabled()
    };
    let original = batch(64, 4, 2);
    let mut b = original.clone();
    let presence = augment_batch(&mut b, &cfg, Normalization::Half, 9, 0).unwrap();
    let len = 3 * 4 * 2;
    let mut synthesised = 0;
    for i in 0..64 {
        for m in 1..3 {
            let changed =
                b.pixels[m][i * len..(i + 1) * len] != original.pixels[m][i * len..(i + 1) * len];
            assert_eq!(changed, presence.pixel_synth[i][m]);
            if presence.pixel_synth[i][m] {
                assert!(presence.present[i][0] && presence.present[i][m]);
                synthesised += 1;
            }
        }
        assert!(!presence.pixel_synth[i][0]);
    }
    assert!(synthesised > 0);
}

#[test]
fn uncertain_degradations_touch_only_present_modalities() {
    let cfg = ModalityAugConfig {
        p_full: 1.0,
        uncertain_prob: 1.0,
        ..enabled()
    };
    let mut b = batch(8, 6, 4);
    let presence = augment_batch(&mut b, &cfg, Normalization::Clip, 2, 0).unwrap();
    assert!(presence
        .degraded
        .iter()
        .all(|d| d.iter().all(Option::is_some)));
    let off = ModalityAugConfig::default();
    let mut untouched = batch(8, 6, 4);
    let presence = augment_batch(&mut untouched, &off, Normalization::Clip, 2, 0).unwrap();
    assert_eq!(untouched, batch(8, 6, 4));
    assert!(presence.present.iter().all(|p| *p == [true; 3]));
}

#[test]
fn test_degradations_are_per_record_deterministic_and_touch_one_modality() {
    for setting in TestDegradation::ALL {
        let mut whole = batch(4, 6, 4);
        apply_test_degradation(&mut whole, setting, Normalization::Half, 11).unwrap();
        let original = batch(4, 6, 4);
        let m = setting.modality().index();
        for other in (0..3).filter(|&o| o != m) {
            assert_eq!(whole.pixels[other], original.pixels[other]);
        }
        assert_ne!(whole.pixels[m], original.pixels[m]);
        // The same record alone in a batch is degraded identically.
        let len = 3 * 6 * 4;
        let mut single = batch(4, 6, 4);
        single.indices = vec![102, 100, 101, 103];
        single.pixels = std::array::from_fn(|k| {
            let p = &original.pixels[k];
            [
                &p[2 * len..3 * len],
                &p[..len],
                &p[len..2 * len],
                &p[3 * len..],
            ]
            .concat()
        });
        apply_test_degradation(&mut single, setting, Normalization::Half, 11).unwrap();
        assert_eq!(single.pixels[m][..len], whole.pixels[m][2 * len..3 * len]);
    }
}

#[test]
fn missing_settings_clear_captions_and_bad_probabilities_are_errors() {
    let mut b = batch(3, 2, 2);
    let rows = apply_missing_setting(&mut b, MISSING_SETTINGS[3].present);
    assert_eq!(rows, vec![[false, false, true]; 3]);
    assert!(
        b.captions[0].iter().all(String::is_empty) && b.captions[1].iter().all(String::is_empty)
    );
    assert!(b.captions[2].iter().all(|c| !c.is_empty()));
    assert!(MISSING_SETTINGS
        .iter()
        .all(|s| s.present.iter().any(|&v| v) && !s.present.iter().all(|&v| v)));
    let bad = ModalityAugConfig {
        p_full: 1.5,
        ..enabled()
    };
    let err = augment_batch(&mut b, &bad, Normalization::Half, 0, 0).unwrap_err();
    assert!(err.to_string().contains("p_full"), "{err}");
}

#[test]
fn the_ramp_keeps_every_modality_first_and_reaches_p_full() {
    let cfg = ModalityAugConfig {
        p_full: 0.4,
        ramp_steps: 100,
        uncertain_prob: 0.0,
        ..enabled()
    };
    assert_eq!(cfg.p_full_at(0), 1.0);
    assert!((cfg.p_full_at(50) - 0.7).abs() < 1e-12);
    assert_eq!(cfg.p_full_at(100), 0.4);
    assert_eq!(cfg.p_full_at(10_000), 0.4);
    let mut first = batch(16, 4, 2);
    let presence = augment_batch(&mut first, &cfg, Normalization::Half, 3, 0).unwrap();
    assert!(presence.present.iter().all(|p| *p == [true; 3]));
    let no_ramp = ModalityAugConfig {
        ramp_steps: 0,
        ..cfg.clone()
    };
    let (mut a, mut b) = (batch(16, 4, 2), batch(16, 4, 2));
    let after = augment_batch(&mut a, &cfg, Normalization::Half, 3, 100).unwrap();
    let plain = augment_batch(&mut b, &no_ramp, Normalization::Half, 3, 100).unwrap();
    assert_eq!(after.present, plain.present);
}

#[test]
fn a_data_parallel_part_is_augmented_as_in_the_whole_batch() {
    let cfg = enabled();
    let mut whole = batch(16, 4, 2);
    let all = augment_batch(&mut whole, &cfg, Normalization::Half, 3, 2).unwrap();
    let len = 3 * 4 * 2;
    let part = |first: usize, n: usize| {
        let full = batch(16, 4, 2);
        let mut b = HostBatch {
            pixels: full
                .pixels
                .map(|p| p[first * len..(first + n) * len].to_vec()),
            indices: full.indices[first..first + n].to_vec(),
            labels: vec![0; n],
            pids: vec![0; n],
            camids: vec![0; n],
            sceneids: vec![-1; n],
            captions: full.captions.map(|c| c[first..first + n].to_vec()),
            present: full.present[first..first + n].to_vec(),
            sketch_present: full.sketch_present[first..first + n].to_vec(),
            first_position: first,
            ..full
        };
        let drawn = augment_batch(&mut b, &cfg, Normalization::Half, 3, 2).unwrap();
        (drawn, b)
    };
    let (second, b) = part(8, 8);
    assert_eq!(second.present, all.present[8..]);
    assert_eq!(second.degraded, all.degraded[8..]);
    assert_eq!(b.pixels[2], whole.pixels[2][8 * len..]);
    assert_eq!(b.captions[1], whole.captions[1][8..]);
}

#[test]
fn shadow_drops_leave_every_other_draw_unchanged_and_are_off_by_default() {
    assert_eq!(ModalityAugConfig::default().shadow_prob, 0.0);
    let run = |shadow_prob| {
        let cfg = ModalityAugConfig {
            shadow_prob,
            pixel_synth: PixelSynth::ChannelAug,
            uncertain_prob: 0.3,
            ..enabled()
        };
        let mut b = batch(64, 4, 2);
        let presence = augment_batch(&mut b, &cfg, Normalization::Half, 11, 4).unwrap();
        (presence, b)
    };
    let (off, batch_off) = run(0.0);
    let (on, batch_on) = run(1.0);
    assert!(off.shadow.iter().all(|s| *s == [false; 3]));
    assert_eq!(batch_off, batch_on);
    assert_eq!(off.present, on.present);
    assert_eq!(off.real, on.real);
    assert_eq!(off.pixel_synth, on.pixel_synth);
    assert_eq!(off.degraded, on.degraded);
    for i in 0..64 {
        let shadows = on.shadow[i].iter().filter(|&&s| s).count();
        // Only samples that keep all their modalities get a shadow, then always one (prob 1).
        let complete = on.present[i] == [true; 3] && on.pixel_synth[i] == [false; 3];
        assert_eq!(
            shadows,
            usize::from(complete),
            "sample {i}: {:?}",
            on.shadow[i]
        );
        for m in 0..3 {
            assert!(!on.shadow[i][m] || on.present[i][m]);
        }
    }
}

#[test]
fn shadow_drops_are_reproducible_from_the_seed_and_cover_every_modality() {
    let cfg = ModalityAugConfig {
        p_full: 1.0,
        shadow_prob: 0.5,
        uncertain_prob: 0.0,
        ..enabled()
    };
    let run = |seed, step| {
        let mut b = batch(64, 4, 2);
        augment_batch(&mut b, &cfg, Normalization::Half, seed, step)
            .unwrap()
            .shadow
    };
    assert_eq!(run(5, 2), run(5, 2));
    assert_ne!(run(5, 2), run(6, 2));
    assert_ne!(run(5, 2), run(5, 3));
    let mut per_modality = [0usize; 3];
    let mut shadowed = 0;
    for step in 0..10 {
        for s in run(1, step) {
            assert!(s.iter().filter(|&&v| v).count() <= 1);
            if s.iter().any(|&v| v) {
                shadowed += 1;
            }
            for m in 0..3 {
                per_modality[m] += usize::from(s[m]);
            }
        }
    }
    // 640 samples with probability 0.5: 320 +- 3 sigma (sigma ~ 12.6); each modality ~ 1/3.
    assert!(
        (282..=358).contains(&shadowed),
        "{shadowed} shadowed of 640"
    );
    for count in per_modality {
        assert!(
            3 * count > shadowed * 2 / 3 && 3 * count < shadowed * 4 / 3,
            "{per_modality:?}"
        );
    }
    // A sample with a single modality has nothing to synthesise its shadow from.
    let mut single = batch(4, 4, 2);
    single.present = vec![[false, true, false]; 4];
    let all = ModalityAugConfig {
        shadow_prob: 1.0,
        ..cfg
    };
    let drawn = augment_batch(&mut single, &all, Normalization::Half, 1, 0).unwrap();
    assert!(drawn.shadow.iter().all(|s| *s == [false; 3]));
    let bad = ModalityAugConfig {
        shadow_prob: 1.5,
        ..all
    };
    let err = augment_batch(&mut single, &bad, Normalization::Half, 1, 0).unwrap_err();
    assert!(err.to_string().contains("shadow_prob"), "{err}");
}
