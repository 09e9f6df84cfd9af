//! File-name rules of each dataset: how pid, camera and scene ids are read from a name.

use crate::config::DatasetKind;

/// Ids read from one file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedName {
    /// Raw identity id as written in the name (or the folder, for per-id layouts).
    pub pid: i64,
    /// Camera id, 0-based; `None` where the name carries no camera (custom layout).
    pub camid: Option<i64>,
    /// Scene id (MSVR310, WMVEID863); -1 where the dataset has none.
    pub sceneid: i64,
}

/// Outcome of parsing a name: ids, a legitimate skip (Market's pid -1 distractors), or a broken rule.
pub type NameResult = Result<Option<ParsedName>, String>;

/// The naming rule of a dataset, in words (used in error messages).
pub fn rule_text(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Rgbnt201 => "`PPPPPP_camC_X_Y.ext` (6-digit pid, camera 1..9)",
        DatasetKind::Rgbnt100 => "`PPPP_cCCCC_NNN.ext` (pid, `c` and camera >= 1)",
        DatasetKind::Msvr310 => "`VVVV_sSSS_vC_NNN.ext` (vehicle id, scene, camera 0..9)",
        DatasetKind::MarketMm => "Market style `PPPP_cCsS_FFFFFF_NN.ext` (pid or -1, camera >= 1)",
        DatasetKind::Wmveid863 => {
            "`vC_nN_sSSS_NNN.ext` (camera, night flag, scene; in a `<vid>` folder)"
        }
        DatasetKind::Custom => {
            "`PID_cCAM_rest.ext` or `PID_rest.ext` (integer pid, optional camera)"
        }
        DatasetKind::MarketSketch => {
            "a Market-style photo name `PPPP_cCsS_FFFFFF_NN.ext` (pid or -1, camera >= 1)"
        }
        DatasetKind::PkuSketch => "a photo name `PID_rest.ext` (integer pid first)",
        DatasetKind::TextReid => "an image listed in the annotation JSON",
    }
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn signed(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(rest) => digits(rest).map(|v| -v),
        None => digits(text),
    }
}

/// Leading digits of `text` after `prefix` (`cam3_x` with prefix `cam` gives 3).
fn after_prefix(text: &str, prefix: &str) -> Option<i64> {
    let rest = text.strip_prefix(prefix)?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    digits(&rest[..end])
}

fn stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// Parse `file_name` by the rule of `kind`. `folder_id` is the id folder for per-id layouts
/// (MSVR310, WMVEID863), whose value is the pid of WMVEID863 images.
pub fn parse_name(kind: DatasetKind, file_name: &str, folder_id: Option<&str>) -> NameResult {
    let fields: Vec<&str> = stem(file_name).split('_').collect();
    let fail = || Err(rule_text(kind).to_string());
    match kind {
        DatasetKind::Rgbnt201 => {
            let (Some(p), Some(c)) = (fields.first(), fields.get(1)) else {
                return fail();
            };
            match (p.len() == 6, digits(p), after_prefix(c, "cam")) {
                (true, Some(pid), Some(cam)) if cam >= 1 => Ok(Some(ParsedName {
                    pid,
                    camid: Some(cam - 1),
                    sceneid: -1,
                })),
                _ => fail(),
            }
        }
        DatasetKind::Rgbnt100 | DatasetKind::MarketMm | DatasetKind::MarketSketch => {
            let (Some(p), Some(c)) = (fields.first(), fields.get(1)) else {
                return fail();
            };
            match (signed(p), after_prefix(c, "c")) {
                (Some(-1), Some(_)) => Ok(None),
                (Some(pid), Some(cam)) if pid >= 0 && cam >= 1 => Ok(Some(ParsedName {
                    pid,
                    camid: Some(cam - 1),
                    sceneid: -1,
                })),
                _ => fail(),
            }
        }
        DatasetKind::Msvr310 => {
            if fields.len() < 3 {
                return fail();
            }
            let pid = digits(fields[0]);
            let scene = fields[1].strip_prefix('s').and_then(digits);
            let cam = fields[2].strip_prefix('v').and_then(digits);
            match (pid, scene, cam) {
                (Some(pid), Some(sceneid), Some(cam)) => Ok(Some(ParsedName {
                    pid,
                    camid: Some(cam),
                    sceneid,
                })),
                _ => fail(),
            }
        }
        DatasetKind::Wmveid863 => {
            let Some(pid) = folder_id.and_then(digits) else {
                return fail();
            };
            let token = |prefix: char| {
                fields
                    .iter()
                    .find_map(|f| f.strip_prefix(prefix).and_then(digits))
            };
            match (token('v'), token('n')) {
                (Some(cam), Some(_night)) => Ok(Some(ParsedName {
                    pid,
                    camid: Some(cam),
                    sceneid: token('s').unwrap_or(999),
                })),
                _ => fail(),
            }
        }
        DatasetKind::PkuSketch => match fields.first().and_then(|p| digits(p)) {
            Some(pid) if fields.len() > 1 => Ok(Some(ParsedName {
                pid,
                camid: None,
                sceneid: -1,
            })),
            _ => fail(),
        },
        DatasetKind::TextReid => fail(),
        DatasetKind::Custom => {
            let Some(pid) = fields.first().and_then(|p| signed(p)) else {
                return fail();
            };
            if pid < 0 {
                return Ok(None);
            }
            let camid = match fields.get(1) {
                Some(c) if fields.len() > 2 && after_prefix(c, "c").is_some() => {
                    after_prefix(c, "c")
                }
                _ => None,
            };
            Ok(Some(ParsedName {
                pid,
                camid,
                sceneid: -1,
            }))
        }
    }
}

/// The naming rule of the sketches of a sketch dataset, in words.
pub fn sketch_rule_text(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::PkuSketch => "a sketch name `PID.ext` (the integer pid alone)",
        _ => "a sketch name starting with a 4-digit pid (`PPPP_rest.ext` or `PPPP.ext`)",
    }
}

/// The pid of a sketch file of a sketch dataset: Market-Sketch-1K names start with a 4-digit
/// pid (`0002_A.jpg`), PKU-Sketch names are the pid alone (`17.jpg`).
pub fn parse_sketch_name(kind: DatasetKind, file_name: &str) -> Result<i64, String> {
    let stem = stem(file_name);
    let pid = match kind {
        DatasetKind::PkuSketch => digits(stem),
        _ => {
            let head = stem.get(..4).and_then(digits);
            let rest_ok = stem
                .get(4..)
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()));
            head.filter(|_| rest_ok)
        }
    };
    pid.ok_or_else(|| sketch_rule_text(kind).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(kind: DatasetKind, name: &str, folder: Option<&str>) -> (i64, Option<i64>, i64) {
        let p = parse_name(kind, name, folder).unwrap().unwrap();
        (p.pid, p.camid, p.sceneid)
    }

    #[test]
    fn reference_names_parse_to_reference_ids() {
        assert_eq!(
            ids(DatasetKind::Rgbnt201, "000030_cam1_1_12.jpg", None),
            (30, Some(0), -1)
        );
        assert_eq!(
            ids(DatasetKind::Rgbnt201, "000171_cam4_0_01.jpg", None),
            (171, Some(3), -1)
        );
        assert_eq!(
            ids(DatasetKind::Rgbnt100, "0561_c0001_006.jpg", None),
            (561, Some(0), -1)
        );
        assert_eq!(
            ids(DatasetKind::Msvr310, "0038_s014_v7_003.jpg", None),
            (38, Some(7), 14)
        );
        assert_eq!(
            ids(DatasetKind::MarketMm, "0002_c1s1_000451_03.jpg", None),
            (2, Some(0), -1)
        );
        assert_eq!(
            ids(DatasetKind::MarketMm, "0000_c6s1_000451_03.jpg", None),
            (0, Some(5), -1)
        );
        assert_eq!(
            ids(DatasetKind::Wmveid863, "v2_n9_s000_022.jpg", Some("0258")),
            (258, Some(2), 0)
        );
        assert_eq!(
            ids(DatasetKind::Wmveid863, "v7_n0_s999_004.jpg", Some("0483")),
            (483, Some(7), 999)
        );
        assert_eq!(
            ids(DatasetKind::Custom, "12_c3_a.png", None),
            (12, Some(3), -1)
        );
        assert_eq!(
            ids(DatasetKind::Custom, "12_front.png", None),
            (12, None, -1)
        );
    }

    #[test]
    fn distractors_are_skipped_and_broken_names_rejected() {
        assert_eq!(
            parse_name(DatasetKind::MarketMm, "-1_c1s1_000401_03.jpg", None),
            Ok(None)
        );
        for (kind, name) in [
            (DatasetKind::Rgbnt201, "30_cam1_1_12.jpg"),
            (DatasetKind::Rgbnt201, "000030_cam0_1_12.jpg"),
            (DatasetKind::Rgbnt201, "holiday.jpg"),
            (DatasetKind::Msvr310, "0038_x014_v7_003.jpg"),
            (DatasetKind::MarketMm, "0002_x1s1_000451_03.jpg"),
            (DatasetKind::Custom, "abc_c1_x.jpg"),
        ] {
            assert!(
                parse_name(kind, name, None).is_err(),
                "{name} should not parse"
            );
        }
        assert!(parse_name(DatasetKind::Wmveid863, "v2_n9_s000_022.jpg", Some("x1")).is_err());
    }
}
