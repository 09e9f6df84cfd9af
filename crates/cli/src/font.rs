//! The one typeface of every picture: DejaVu Sans (assets/fonts, Bitstream Vera licence), compiled
//! into the binary and registered with plotters' `ab_glyph` text renderer, so pictures need no
//! system font at run time. Charts and image captions both draw their text through it.

use crate::plot::PlotError;
use plotters::style::{FontDesc, FontStyle, IntoFont};
use std::sync::OnceLock;

/// The TrueType file of DejaVu Sans, as shipped in `assets/fonts/DejaVuSans.ttf`.
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The family name the font is registered under: plotters' default family, so that text a chart
/// draws with its default style uses the embedded font too.
pub const FAMILY: &str = "sans-serif";

/// Whether the embedded font was registered (done once per process).
static REGISTERED: OnceLock<bool> = OnceLock::new();

/// The embedded font at `size` pixels, registering it with plotters on first use.
pub fn font(size: f64) -> Result<FontDesc<'static>, PlotError> {
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok((FAMILY, size).into_font())
    } else {
        Err(PlotError::Font {
            message: "the embedded DejaVu Sans font (assets/fonts/DejaVuSans.ttf) is not a valid TrueType file".into(),
        })
    }
}

/// Width and height in pixels of `text` drawn in the embedded font at `size` pixels.
pub fn text_size(text: &str, size: f64) -> Result<(u32, u32), PlotError> {
    font(size)?.box_size(text).map_err(|e| PlotError::Font {
        message: format!("measuring {text:?}: {e}"),
    })
}
