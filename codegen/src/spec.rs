//! The spec model: Kafka's JSON message specs parsed into versions, types,
//! fields and structs, plus the version arithmetic the emitters use to
//! decide conditions at generation time.

use std::fmt::Write as _;

use serde_json::Value;

/// Removes `//` comments (outside string literals) so that serde_json can parse the specs.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for c in chars.by_ref() {
                if c == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Spec model
// ---------------------------------------------------------------------------

/// An inclusive version range; empty when `min > max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { min: 1, max: 0 };

    pub fn parse(s: &str) -> Result<Versions, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Versions::NONE);
        }
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|e| format!("bad version '{s}': {e}"))
        };
        if let Some(start) = s.strip_suffix('+') {
            return Ok(Versions {
                min: num(start)?,
                max: i16::MAX,
            });
        }
        if let Some((a, b)) = s.split_once('-') {
            return Ok(Versions {
                min: num(a)?,
                max: num(b)?,
            });
        }
        let v = num(s)?;
        Ok(Versions { min: v, max: v })
    }

    pub fn is_empty(self) -> bool {
        self.min > self.max
    }

    pub fn intersect(self, other: Versions) -> Versions {
        Versions {
            min: self.min.max(other.min),
            max: self.max.min(other.max),
        }
    }

    /// The versions in `self` that are not in `other` (zero, one or two ranges).
    pub fn minus(self, other: Versions) -> Vec<Versions> {
        if self.is_empty() {
            return Vec::new();
        }
        let cut = self.intersect(other);
        if cut.is_empty() {
            return vec![self];
        }
        let mut out = Vec::new();
        if cut.min > self.min {
            out.push(Versions {
                min: self.min,
                max: cut.min - 1,
            });
        }
        if cut.max < self.max {
            out.push(Versions {
                min: cut.max + 1,
                max: self.max,
            });
        }
        out
    }

    /// The smallest range holding every range in `set` (empty for an empty set).
    pub fn hull(set: &[Versions]) -> Versions {
        set.iter()
            .filter(|v| !v.is_empty())
            .fold(Versions::NONE, |acc, v| {
                if acc.is_empty() {
                    *v
                } else {
                    Versions {
                        min: acc.min.min(v.min),
                        max: acc.max.max(v.max),
                    }
                }
            })
    }
}

/// A condition on `version`, decided at generation time where it can be.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// True in every version the code can run in.
    Always,
    /// True in no version the code can run in.
    Never,
    /// A Rust boolean expression over `version`.
    When(String),
}

impl Cond {
    /// "Is `version` in `set`?", knowing that `version` is in `within`.
    pub fn of(set: &[Versions], within: Versions) -> Cond {
        let parts: Vec<Versions> = set
            .iter()
            .map(|r| r.intersect(within))
            .filter(|r| !r.is_empty())
            .collect();
        if parts.is_empty() || within.is_empty() {
            return Cond::Never;
        }
        let mut exprs = Vec::new();
        for r in &parts {
            let lower = r.min > within.min;
            let upper = r.max < within.max;
            exprs.push(match (lower, upper) {
                (false, false) => return Cond::Always,
                (true, false) => format!("version >= {}", r.min),
                (false, true) => format!("version <= {}", r.max),
                (true, true) if r.min == r.max => format!("version == {}", r.min),
                (true, true) => format!("version >= {} && version <= {}", r.min, r.max),
            });
        }
        Cond::When(exprs.join(" || "))
    }

    /// "Is `version` in `range`?", knowing that `version` is in `within`.
    pub fn range(range: Versions, within: Versions) -> Cond {
        Cond::of(&[range], within)
    }

    /// The condition as a Rust expression.
    pub fn expr(&self) -> &str {
        match self {
            Cond::Always => "true",
            Cond::Never => "false",
            Cond::When(e) => e,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Ty {
    Bool,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    F64,
    Str,
    Bytes,
    Uuid,
    Records,
    Struct(String),
    Array(Box<Ty>),
}

impl Ty {
    pub fn parse(s: &str) -> Ty {
        if let Some(inner) = s.strip_prefix("[]") {
            return Ty::Array(Box::new(Ty::parse(inner)));
        }
        match s {
            "bool" => Ty::Bool,
            "int8" => Ty::I8,
            "int16" => Ty::I16,
            "uint16" => Ty::U16,
            "int32" => Ty::I32,
            "uint32" => Ty::U32,
            "int64" => Ty::I64,
            "float64" => Ty::F64,
            "string" => Ty::Str,
            "bytes" => Ty::Bytes,
            "uuid" => Ty::Uuid,
            "records" => Ty::Records,
            other => Ty::Struct(other.to_string()),
        }
    }

    pub fn can_be_null(&self) -> bool {
        matches!(
            self,
            Ty::Str | Ty::Bytes | Ty::Records | Ty::Array(_) | Ty::Struct(_)
        )
    }

    /// The Rust type of a non-null value.
    pub fn rust(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::I8 => "i8".into(),
            Ty::I16 => "i16".into(),
            Ty::U16 => "u16".into(),
            Ty::I32 => "i32".into(),
            Ty::U32 => "u32".into(),
            Ty::I64 => "i64".into(),
            Ty::F64 => "f64".into(),
            Ty::Str => "::std::string::String".into(),
            Ty::Bytes | Ty::Records => "::bytes::Bytes".into(),
            Ty::Uuid => "Uuid".into(),
            Ty::Struct(n) => n.clone(),
            Ty::Array(inner) => format!("::std::vec::Vec<{}>", inner.rust()),
        }
    }

    /// Minimum encoded size of one value, as a Rust expression over `version`;
    /// `compact` is the expression for "compact encodings are in use".
    pub fn min_size(&self, compact: &str) -> String {
        let pick = |flex: usize, classic: usize| match compact {
            "true" => flex.to_string(),
            "false" => classic.to_string(),
            c => format!("if {c} {{ {flex} }} else {{ {classic} }}"),
        };
        match self {
            Ty::Bool | Ty::I8 => "1".into(),
            Ty::I16 | Ty::U16 => "2".into(),
            Ty::I32 | Ty::U32 => "4".into(),
            Ty::I64 | Ty::F64 => "8".into(),
            Ty::Uuid => "16".into(),
            Ty::Str => pick(1, 2),
            Ty::Bytes | Ty::Records | Ty::Array(_) => pick(1, 4),
            Ty::Struct(n) => format!("{n}::min_size(version)"),
        }
    }

    /// The struct a field of this type holds (directly or as array elements).
    pub fn struct_name(&self) -> Option<&str> {
        match self {
            Ty::Struct(n) => Some(n),
            Ty::Array(inner) => inner.struct_name(),
            _ => None,
        }
    }

    /// The fixed encoded size of a value of this type, if it has one.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Ty::Bool | Ty::I8 => Some(1),
            Ty::I16 | Ty::U16 => Some(2),
            Ty::I32 | Ty::U32 => Some(4),
            Ty::I64 | Ty::F64 => Some(8),
            Ty::Uuid => Some(16),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub rust_name: String,
    pub ty: Ty,
    pub versions: Versions,
    pub nullable: Versions,
    pub tag: Option<u32>,
    pub tagged: Versions,
    pub ignorable: bool,
    pub default: Option<String>,
    pub about: String,
    pub map_key: bool,
    pub flexible_override: Option<Versions>,
}

impl Field {
    /// Nullable in some version: represented as `Option<T>`.
    pub fn optional(&self) -> bool {
        matches!(self.ty, Ty::Records) || (self.ty.can_be_null() && !self.nullable.is_empty())
    }

    pub fn rust_type(&self) -> String {
        if self.optional() {
            format!("::std::option::Option<{}>", self.ty.rust())
        } else {
            self.ty.rust()
        }
    }

    pub fn default_is_null(&self) -> bool {
        matches!(self.ty, Ty::Records)
            || (self.optional() && self.default.as_deref() == Some("null"))
    }

    /// The default value as a Rust expression.
    pub fn default_expr(&self) -> String {
        if self.default_is_null() {
            return "::std::option::Option::None".into();
        }
        let base = match &self.ty {
            Ty::Bool => match self.default.as_deref() {
                Some("true") => "true".into(),
                _ => "false".into(),
            },
            Ty::I8 | Ty::I16 | Ty::U16 | Ty::I32 | Ty::U32 | Ty::I64 => {
                let v = self.default.as_deref().map_or(0, parse_int);
                format!("{v}{}", self.ty.rust())
            }
            Ty::F64 => {
                let v: f64 = self
                    .default
                    .as_deref()
                    .map_or(0.0, |d| d.parse().expect("float default"));
                format!("{v:?}f64")
            }
            Ty::Str => match self.default.as_deref() {
                Some(d) if !d.is_empty() => format!("::std::string::String::from({d:?})"),
                _ => "::std::string::String::new()".into(),
            },
            Ty::Bytes | Ty::Records => "::bytes::Bytes::new()".into(),
            Ty::Uuid => "Uuid::ZERO".into(),
            Ty::Array(inner) => format!("::std::vec::Vec::<{}>::new()", inner.rust()),
            Ty::Struct(n) => format!("<{n} as ::std::default::Default>::default()"),
        };
        if self.optional() {
            format!("::std::option::Option::Some({base})")
        } else {
            base
        }
    }

    /// The versions (within `within`) in which the field is sent in the tagged section.
    pub fn tagged_in(&self, within: Versions) -> Versions {
        if self.tag.is_some() {
            self.tagged.intersect(self.versions).intersect(within)
        } else {
            Versions::NONE
        }
    }

    /// The versions (within `within`) in which the field is sent in the regular, untagged part.
    pub fn untagged_in(&self, within: Versions) -> Vec<Versions> {
        self.versions
            .intersect(within)
            .minus(self.tagged_in(within))
    }

    /// The versions (within `within`) in which the field uses compact encodings.
    pub fn compact_in(&self, flexible: Versions) -> Versions {
        match self.flexible_override {
            Some(o) => flexible.intersect(o),
            None => flexible,
        }
    }
}

/// The struct's fields that are tagged in some version, in tag order.
pub fn tagged_fields(s: &StructDef, within: Versions) -> Vec<&Field> {
    let mut fields: Vec<&Field> = s
        .fields
        .iter()
        .filter(|f| !f.tagged_in(within).is_empty())
        .collect();
    fields.sort_by_key(|f| f.tag);
    fields
}

pub fn parse_int(s: &str) -> i64 {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).expect("hex default")
    } else {
        body.parse::<i64>().expect("integer default")
    };
    if neg {
        -v
    } else {
        v
    }
}

#[derive(Clone, Debug)]
pub struct StructDef {
    pub name: String,
    pub about: String,
    pub fields: Vec<Field>,
}

#[derive(Debug)]
pub struct Spec {
    pub api_key: Option<i16>,
    pub kind: String,
    pub name: String,
    pub valid: Versions,
    pub flexible: Versions,
    pub latest_unstable: bool,
    pub top: StructDef,
    /// Nested and common structs, in definition order.
    pub structs: Vec<StructDef>,
}

impl Spec {
    pub fn parse(json: &Value) -> Result<Spec, String> {
        let name = str_of(json, "name")?;
        let kind = str_of(json, "type")?;
        let valid = Versions::parse(&str_of(json, "validVersions")?)?;
        let flexible = match json.get("flexibleVersions").and_then(Value::as_str) {
            Some(s) => Versions::parse(s)?,
            None => Versions::NONE,
        };
        let mut structs: Vec<StructDef> = Vec::new();
        if let Some(common) = json.get("commonStructs").and_then(Value::as_array) {
            for c in common {
                let sname = str_of(c, "name")?;
                let fields = parse_fields(c.get("fields"), &mut structs)?;
                structs.push(StructDef {
                    name: sname,
                    about: String::new(),
                    fields,
                });
            }
        }
        let fields = parse_fields(json.get("fields"), &mut structs)?;
        let about = json
            .get("about")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Spec {
            api_key: json.get("apiKey").and_then(Value::as_i64).map(|k| k as i16),
            kind,
            name: name.clone(),
            valid,
            flexible,
            latest_unstable: json
                .get("latestVersionUnstable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            top: StructDef {
                name,
                about,
                fields,
            },
            structs,
        })
    }
}

pub fn str_of(v: &Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("missing string '{key}'"))
}

pub fn parse_fields(
    fields: Option<&Value>,
    structs: &mut Vec<StructDef>,
) -> Result<Vec<Field>, String> {
    let Some(list) = fields.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in list {
        let name = str_of(f, "name")?;
        let ty = Ty::parse(&str_of(f, "type")?);
        // Inline nested struct definitions.
        if let Some(nested) = f.get("fields") {
            let struct_name = match &ty {
                Ty::Struct(n) => n.clone(),
                Ty::Array(inner) => match inner.as_ref() {
                    Ty::Struct(n) => n.clone(),
                    _ => return Err(format!("field {name} has fields but no struct type")),
                },
                _ => return Err(format!("field {name} has fields but no struct type")),
            };
            let nested_fields = parse_fields(Some(nested), structs)?;
            if structs.iter().any(|s| s.name == struct_name) {
                return Err(format!("struct {struct_name} defined twice"));
            }
            structs.push(StructDef {
                name: struct_name,
                about: f
                    .get("about")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                fields: nested_fields,
            });
        }
        let versions = Versions::parse(&str_of(f, "versions")?)?;
        let nullable = match f.get("nullableVersions").and_then(Value::as_str) {
            Some(s) => Versions::parse(s)?,
            None => Versions::NONE,
        };
        let tag = f.get("tag").and_then(Value::as_u64).map(|t| t as u32);
        let tagged = match f.get("taggedVersions").and_then(Value::as_str) {
            Some(s) => Versions::parse(s)?,
            None => Versions::NONE,
        };
        let default = match f.get("default") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let flexible_override = match f.get("flexibleVersions").and_then(Value::as_str) {
            Some(s) => Some(Versions::parse(s)?),
            None => None,
        };
        out.push(Field {
            rust_name: rust_ident(&snake_case(&name)),
            name,
            ty,
            versions,
            nullable,
            tag,
            tagged,
            ignorable: f.get("ignorable").and_then(Value::as_bool).unwrap_or(false),
            default,
            about: f
                .get("about")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            map_key: f.get("mapKey").and_then(Value::as_bool).unwrap_or(false),
            flexible_override,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for f in &out {
        if !seen.insert(f.rust_name.clone()) {
            return Err(format!("two fields map to the Rust name {}", f.rust_name));
        }
    }
    Ok(out)
}

pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn rust_ident(s: &str) -> String {
    match s {
        "type" | "match" | "async" | "await" | "box" | "crate" | "self" | "super" | "where"
        | "ref" | "move" | "mod" | "use" | "fn" | "loop" | "impl" | "trait" | "struct" | "enum"
        | "const" | "static" | "in" | "as" | "for" | "if" | "else" | "while" | "return"
        | "break" | "continue" | "let" | "mut" | "pub" | "dyn" | "yield" | "try" | "macro"
        | "gen" | "extern" => {
            format!("r#{s}")
        }
        _ => s.to_string(),
    }
}

pub fn doc(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {line}");
        }
    }
}

pub fn describe_versions(v: Versions) -> String {
    if v.is_empty() {
        "no version".into()
    } else if v.max == i16::MAX {
        format!("versions {}+", v.min)
    } else if v.min == v.max {
        format!("version {}", v.min)
    } else {
        format!("versions {}-{}", v.min, v.max)
    }
}
