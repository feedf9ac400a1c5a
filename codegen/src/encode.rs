//! Encoding: `Encodable::encode` and `Encodable::encoded_len` for every struct.

use std::fmt::Write as _;

use crate::layout::{lit, Ctx};
use crate::spec::{tagged_fields, Cond, Field, StructDef, Ty, Versions};

/// How a value is written: its compact-encoding expression and whether a
/// nullable struct uses the tagged (varint) presence form.
struct Form<'a> {
    compact: &'a str,
    tagged: bool,
}

pub fn gen_encode(ctx: &Ctx, s: &StructDef, top: bool, out: &mut String) {
    let within = ctx.within(s);
    let name = lit(&s.name);
    let _ = writeln!(out, "impl Encodable for {} {{", s.name);
    let _ = write!(out, "{}", Ctx::inline_if(ctx.broker_encodes()));
    let _ = writeln!(out, "    #[allow(unused_variables)]");
    let _ = writeln!(
        out,
        "    fn encode(&self, buf: &mut ::bytes::BytesMut, version: i16) -> ::std::result::Result<(), EncodeError> {{"
    );
    if top {
        let _ = writeln!(
            out,
            "        if !<Self as Message>::VERSIONS.contains(version) {{ return Err(EncodeError::UnsupportedVersion {{ message: {name}, version }}); }}"
        );
    }
    for f in &s.fields {
        let present = Cond::range(f.versions, within);
        let untagged = f.untagged_in(within);
        let compact = ctx.compact(f, &untagged);
        let nullable = Cond::range(f.nullable, Versions::hull(&untagged));
        let form = Form {
            compact: compact.expr(),
            tagged: false,
        };
        let write = write_field(s, f, &nullable, &form);
        match Cond::of(&untagged, within) {
            Cond::Never => {}
            Cond::Always => {
                let _ = writeln!(out, "        {write}");
            }
            Cond::When(c) => {
                let _ = writeln!(out, "        if {c} {{ {write} }}");
            }
        }
        if !f.ignorable {
            let check = format!(
                "if self.{} != {} {{ return Err(EncodeError::NonIgnorableField {{ message: {name}, field: {}, version }}); }}",
                f.rust_name,
                f.default_expr(),
                lit(&f.name)
            );
            match present {
                Cond::Always => {}
                Cond::Never => {
                    let _ = writeln!(out, "        {check}");
                }
                Cond::When(c) => {
                    let _ = writeln!(out, "        if !({c}) {{ {check} }}");
                }
            }
        }
    }
    // The tagged-field section.
    let flexible = ctx.flexible(s);
    let in_flexible = within.intersect(ctx.spec.flexible);
    let tagged = tagged_fields(s, within);
    let section = if tagged.is_empty() {
        "put_unknown_tagged_fields(buf, &self.unknown_tagged_fields)?;".to_string()
    } else {
        let mut known = Vec::new();
        let mut arms = String::new();
        for f in &tagged {
            let tag = f.tag.expect("tagged");
            let when = Cond::range(f.tagged_in(within), in_flexible);
            let set = format!("self.{} != {}", f.rust_name, f.default_expr());
            known.push(match when {
                Cond::Always => format!("({tag}, {set})"),
                Cond::Never => format!("({tag}, false)"),
                Cond::When(c) => format!("({tag}, ({c}) && {set})"),
            });
            let nullable = Cond::range(f.nullable, f.tagged_in(within));
            let form = Form {
                compact: "true",
                tagged: true,
            };
            let _ = write!(
                arms,
                "{tag} => {{ {} }}",
                write_field(s, f, &nullable, &form)
            );
        }
        format!(
            "put_tagged_fields(buf, &self.unknown_tagged_fields, &[{}], |buf, tag| {{ match tag {{ {arms} _ => {{}} }} Ok(()) }})?;",
            known.join(", ")
        )
    };
    let check = format!("no_tagged_fields(&self.unknown_tagged_fields, {name}, version)?;");
    match flexible {
        Cond::Always => {
            let _ = writeln!(out, "        {section}");
        }
        Cond::Never => {
            let _ = writeln!(out, "        {check}");
        }
        Cond::When(c) => {
            let _ = writeln!(out, "        if {c} {{ {section} }} else {{ {check} }}");
        }
    }
    let _ = writeln!(out, "        Ok(())\n    }}\n");
    gen_encoded_len(ctx, s, out);
    let _ = writeln!(out, "}}\n");
}

/// Code that writes `self.<f>`, which may be null where `nullable` holds.
fn write_field(s: &StructDef, f: &Field, nullable: &Cond, form: &Form) -> String {
    let place = format!("self.{}", f.rust_name);
    if !f.optional() {
        return write_value(&f.ty, &place, false, form);
    }
    let name = lit(&s.name);
    let field = lit(&f.name);
    let checked = |opt: String| match nullable {
        Cond::Always => opt,
        c => format!("check_null({opt}, {}, {name}, {field}, version)?", c.expr()),
    };
    let c = form.compact;
    match &f.ty {
        Ty::Str => format!(
            "put_nullable_string(buf, {}, {c})?;",
            checked(format!("{place}.as_deref()"))
        ),
        Ty::Bytes | Ty::Records => format!(
            "put_nullable_bytes(buf, {}, {c})?;",
            checked(format!("{place}.as_deref()"))
        ),
        Ty::Array(inner) => format!(
            "match {} {{ Some(v) => {{ put_array_len(buf, Some(v.len()), {c})?; for e in v {{ {} }} }} None => put_array_len(buf, None, {c})?, }}",
            checked(format!("{place}.as_deref()")),
            write_element(inner, form)
        ),
        Ty::Struct(_) => format!(
            "put_struct_presence(buf, {place}.is_some(), {}, {}, {name}, {field}, version)?; if let Some(v) = &{place} {{ v.encode(buf, version)?; }}",
            nullable.expr(),
            form.tagged
        ),
        _ => unreachable!("only strings, bytes, arrays and structs are nullable"),
    }
}

/// The statements writing one array element `e` (a `&T`), inside the
/// generated loop: no closure and no generic helper per array field.
fn write_element(ty: &Ty, form: &Form) -> String {
    write_value(ty, "e", true, form)
}

/// Code that writes a non-null value; `place` is of type `T`, or `&T` when `is_ref`.
fn write_value(ty: &Ty, place: &str, is_ref: bool, form: &Form) -> String {
    let v = if is_ref {
        format!("*{place}")
    } else {
        place.to_string()
    };
    let c = form.compact;
    match ty {
        Ty::Bool => format!("buf.put_u8(u8::from({v}));"),
        Ty::I8 => format!("buf.put_i8({v});"),
        Ty::I16 => format!("buf.put_i16({v});"),
        Ty::U16 => format!("buf.put_u16({v});"),
        Ty::I32 => format!("buf.put_i32({v});"),
        Ty::U32 => format!("buf.put_u32({v});"),
        Ty::I64 => format!("buf.put_i64({v});"),
        Ty::F64 => format!("buf.put_f64({v});"),
        Ty::Uuid => format!("put_uuid(buf, &{v});"),
        Ty::Str => format!("put_nullable_string(buf, Some({place}.as_str()), {c})?;"),
        Ty::Bytes | Ty::Records => format!("put_nullable_bytes(buf, Some(&{place}[..]), {c})?;"),
        Ty::Struct(_) => format!("{place}.encode(buf, version)?;"),
        Ty::Array(inner) => format!(
            "put_array_len(buf, Some({place}.len()), {c})?; for e in {place}.iter() {{ {} }}",
            write_element(inner, form)
        ),
    }
}

/// `encoded_len`: the exact number of bytes `encode` writes, so that frames
/// and batches are sized once.
fn gen_encoded_len(ctx: &Ctx, s: &StructDef, out: &mut String) {
    let within = ctx.within(s);
    let _ = write!(out, "{}", Ctx::inline_if(ctx.broker_encodes()));
    let _ = writeln!(out, "    #[allow(unused_variables)]");
    let _ = writeln!(out, "    fn encoded_len(&self, version: i16) -> usize {{");
    let mut fixed = 0usize;
    let mut lines: Vec<String> = Vec::new();
    for f in &s.fields {
        let untagged = f.untagged_in(within);
        let compact = ctx.compact(f, &untagged);
        let nullable = Cond::range(f.nullable, Versions::hull(&untagged));
        let form = Form {
            compact: compact.expr(),
            tagged: false,
        };
        let len = field_len(f, &nullable, &form);
        match (Cond::of(&untagged, within), len.parse::<usize>()) {
            (Cond::Never, _) => {}
            (Cond::Always, Ok(n)) => fixed += n,
            (Cond::Always, Err(_)) => lines.push(format!("len += {len};")),
            (Cond::When(c), _) => lines.push(format!("if {c} {{ len += {len}; }}")),
        }
    }
    let in_flexible = within.intersect(ctx.spec.flexible);
    let known: Vec<String> = tagged_fields(s, within)
        .iter()
        .map(|f| {
            let tag = f.tag.expect("tagged");
            let nullable = Cond::range(f.nullable, f.tagged_in(within));
            let form = Form {
                compact: "true",
                tagged: true,
            };
            let set = format!("self.{} != {}", f.rust_name, f.default_expr());
            let len = field_len(f, &nullable, &form);
            match Cond::range(f.tagged_in(within), in_flexible) {
                Cond::Never => format!("({tag}, None)"),
                Cond::Always => format!("({tag}, if {set} {{ Some({len}) }} else {{ None }})"),
                Cond::When(c) => {
                    format!("({tag}, if ({c}) && {set} {{ Some({len}) }} else {{ None }})")
                }
            }
        })
        .collect();
    let section = format!(
        "tagged_fields_len(&self.unknown_tagged_fields, &[{}])",
        known.join(", ")
    );
    match ctx.flexible(s) {
        Cond::Never => {}
        Cond::Always => lines.push(format!("len += {section};")),
        Cond::When(c) => lines.push(format!("if {c} {{ len += {section}; }}")),
    }
    if lines.is_empty() {
        let _ = writeln!(out, "        {fixed}");
    } else {
        let _ = writeln!(out, "        let mut len = {fixed};");
        for l in lines {
            let _ = writeln!(out, "        {l}");
        }
        let _ = writeln!(out, "        len");
    }
    let _ = writeln!(out, "    }}");
}

/// The encoded length of `self.<f>` (a `usize` expression).
fn field_len(f: &Field, nullable: &Cond, form: &Form) -> String {
    let place = format!("self.{}", f.rust_name);
    if !f.optional() {
        return value_len(&f.ty, &place, form);
    }
    let c = form.compact;
    match &f.ty {
        Ty::Str => format!(
            "match &{place} {{ Some(v) => prefixed_len(Some(v.len()), {c}, false), None => prefixed_len(None, {c}, false) }}"
        ),
        Ty::Bytes | Ty::Records => format!(
            "match &{place} {{ Some(v) => prefixed_len(Some(v.len()), {c}, true), None => prefixed_len(None, {c}, true) }}"
        ),
        Ty::Array(inner) => format!(
            "match &{place} {{ Some(v) => {}, None => array_prefix_len(None, {c}) }}",
            array_value_len(inner, "v", form)
        ),
        Ty::Struct(_) => {
            let presence = match nullable {
                Cond::Always => "1".to_string(),
                Cond::Never => "0".to_string(),
                Cond::When(c) => format!("usize::from({c})"),
            };
            format!("{presence} + match &{place} {{ Some(v) => v.encoded_len(version), None => 0 }}")
        }
        _ => unreachable!("only strings, bytes, arrays and structs are nullable"),
    }
}

fn element_len(ty: &Ty, form: &Form) -> String {
    value_len(ty, "e", form)
}

/// The encoded length of a non-null value at `place` (auto-dereferenced).
fn value_len(ty: &Ty, place: &str, form: &Form) -> String {
    if let Some(n) = ty.fixed_size() {
        return n.to_string();
    }
    let c = form.compact;
    match ty {
        Ty::Str => format!("prefixed_len(Some({place}.len()), {c}, false)"),
        Ty::Bytes | Ty::Records => format!("prefixed_len(Some({place}.len()), {c}, true)"),
        Ty::Struct(_) => format!("{place}.encoded_len(version)"),
        Ty::Array(inner) => array_value_len(inner, place, form),
        _ => unreachable!("fixed-size types handled above"),
    }
}

/// The encoded length of a non-null array at `place`: the prefix plus, for
/// fixed-size elements, a multiplication, otherwise a plain loop (no closure
/// and no generic helper per array field).
fn array_value_len(inner: &Ty, place: &str, form: &Form) -> String {
    let c = form.compact;
    match inner.fixed_size() {
        Some(n) => format!("fixed_array_len(Some({place}.len()), {c}, {n})"),
        None => format!(
            "{{ let mut n = array_prefix_len(Some({place}.len()), {c}); for e in {place}.iter() {{ n += {}; }} n }}",
            element_len(inner, form)
        ),
    }
}
