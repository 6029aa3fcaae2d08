//! A tiny HTML writer whose only way to add markup is a `&'static str`: anything built at
//! run time (names from the configuration, keys, AWS messages, request ids) can only go
//! in through [`Html::text`] or [`Html::attr`], which escape it.

use std::fmt::Write;

/// An HTML document being written.
#[derive(Debug, Default)]
pub struct Html {
    out: String,
}

impl Html {
    pub fn with_capacity(bytes: usize) -> Html {
        Html {
            out: String::with_capacity(bytes),
        }
    }

    /// Markup written by this program. `'static`: a value read at run time cannot be
    /// passed here by mistake.
    pub fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.out.push_str(markup);
        self
    }

    /// Text content: `&`, `<` and `>` escaped.
    pub fn text(&mut self, s: &str) -> &mut Html {
        escape_into(&mut self.out, s, false);
        self
    }

    /// A quoted attribute value (`name="…"` is written by the caller with [`Html::raw`]):
    /// quotes escaped as well.
    pub fn attr(&mut self, s: &str) -> &mut Html {
        escape_into(&mut self.out, s, true);
        self
    }

    /// Formatted text (numbers, durations), escaped like [`Html::text`].
    pub fn text_fmt(&mut self, args: std::fmt::Arguments<'_>) -> &mut Html {
        let mut s = String::new();
        let _ = s.write_fmt(args);
        self.text(&s)
    }

    /// A formatted attribute value (numbers, coordinates), escaped like [`Html::attr`].
    pub fn attr_fmt(&mut self, args: std::fmt::Arguments<'_>) -> &mut Html {
        let mut s = String::new();
        let _ = s.write_fmt(args);
        self.attr(&s)
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes `s` for HTML text, or for a quoted attribute value when `attribute` is set.
fn escape_into(out: &mut String, s: &str, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escape(s: &str, attribute: bool) -> String {
        let mut out = String::new();
        escape_into(&mut out, s, attribute);
        out
    }

    #[test]
    fn text_escapes_markup_and_ampersands() {
        assert_eq!(
            escape("<script>alert(1)</script> & co", false),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
        );
        // Quotes are harmless in text and stay readable.
        assert_eq!(escape(r#"it's "quoted""#, false), r#"it's "quoted""#);
        // An already escaped entity is escaped again: the page shows what AWS sent.
        assert_eq!(escape("&lt;", false), "&amp;lt;");
    }

    #[test]
    fn attributes_also_escape_both_quotes() {
        assert_eq!(
            escape(r#"" onmouseover="x' y"#, true),
            "&quot; onmouseover=&quot;x&#39; y"
        );
        assert_eq!(escape("a<b>&", true), "a&lt;b&gt;&amp;");
    }

    #[test]
    fn non_ascii_and_plain_text_pass_through() {
        let s = "replication → 宛先 ✓ plain-text_123/key";
        assert_eq!(escape(s, false), s);
        assert_eq!(escape(s, true), s);
        assert_eq!(escape("", true), "");
    }

    #[test]
    fn the_writer_escapes_everything_but_static_markup() {
        let mut h = Html::default();
        h.raw("<p title=\"")
            .attr("\"><script>")
            .raw("\">")
            .text("<b>")
            .text_fmt(format_args!("{}<", 3))
            .raw("<i data-x=\"")
            .attr_fmt(format_args!("{}\"", 1.5))
            .raw("\"></i>")
            .raw("</p>");
        assert_eq!(
            h.finish(),
            "<p title=\"&quot;&gt;&lt;script&gt;\">&lt;b&gt;3&lt;<i data-x=\"1.5&quot;\"></i></p>"
        );
    }
}
