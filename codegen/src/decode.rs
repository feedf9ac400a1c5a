//! Decoding: `Decodable::decode` for every struct. Errors inside a field
//! carry the field's path and byte offset.

use std::fmt::Write as _;

use crate::layout::{lit, Ctx};
use crate::spec::{tagged_fields, Cond, Field, StructDef, Ty, Versions};

pub fn gen_decode(ctx: &Ctx, s: &StructDef, top: bool, out: &mut String) {
    let within = ctx.within(s);
    let name = lit(&s.name);
    let inline = Ctx::inline_if(ctx.broker_decodes());
    let _ = writeln!(out, "impl Decodable for {} {{", s.name);
    let _ = write!(out, "{inline}");
    let _ = writeln!(out, "    #[allow(unused_variables)]");
    let _ = writeln!(
        out,
        "    fn decode(buf: &mut ::bytes::Bytes, version: i16) -> ::std::result::Result<Self, DecodeError> {{"
    );
    if top {
        let _ = writeln!(
            out,
            "        if !<Self as Message>::VERSIONS.contains(version) {{ return Err(DecodeError::UnsupportedVersion {{ message: {name}, version }}); }}"
        );
    }
    // The fields are read by a private function rather than a closure, so
    // that no closure, `FnOnce` shim or `map_err` is instantiated per struct.
    let _ = writeln!(out, "        let start = buf.len();");
    let _ = writeln!(out, "        let mut at = (\"\", start);");
    let _ = writeln!(
        out,
        "        match Self::decode_fields(buf, version, &mut at) {{ Ok(this) => Ok(this), Err(e) => Err(e.in_field({name}, at.0, at.1, start)) }}"
    );
    let _ = writeln!(out, "    }}\n}}\n");
    let _ = writeln!(out, "impl {} {{", s.name);
    let _ = write!(out, "{inline}");
    let _ = writeln!(out, "    #[allow(unused_variables)]");
    let _ = writeln!(
        out,
        "    fn decode_fields(buf: &mut ::bytes::Bytes, version: i16, at: &mut (&'static str, usize)) -> ::std::result::Result<Self, DecodeError> {{"
    );
    let _ = writeln!(out, "            let mut this = Self::default();");
    for f in &s.fields {
        let untagged = f.untagged_in(within);
        let compact = ctx.compact(f, &untagged);
        let nullable = Cond::range(f.nullable, Versions::hull(&untagged));
        let read = read_field(f, &nullable, compact.expr(), false);
        let stmt = format!(
            "*at = ({}, buf.len()); this.{} = {read};",
            lit(&f.rust_name),
            f.rust_name
        );
        match Cond::of(&untagged, within) {
            Cond::Never => {}
            Cond::Always => {
                let _ = writeln!(out, "            {stmt}");
            }
            Cond::When(c) => {
                let _ = writeln!(out, "            if {c} {{ {stmt} }}");
            }
        }
    }
    let in_flexible = within.intersect(ctx.spec.flexible);
    let tagged = tagged_fields(s, within);
    let section = if tagged.is_empty() {
        "*at = (\"_tagged_fields\", buf.len()); read_unknown_tagged_fields(buf, &mut this.unknown_tagged_fields)?;".to_string()
    } else {
        let mut arms = String::new();
        for f in &tagged {
            let tag = f.tag.expect("tagged");
            let guard = match Cond::range(f.tagged_in(within), in_flexible) {
                Cond::Never => continue,
                Cond::Always => String::new(),
                Cond::When(c) => format!(" if {c}"),
            };
            let nullable = Cond::range(f.nullable, f.tagged_in(within));
            let read = read_field(f, &nullable, "true", true);
            let _ = write!(
                arms,
                "{tag}{guard} => {{ *at = ({}, buf.len()); let raw = data.clone(); this.{} = decode_tagged_value(data, |buf| Ok({read}))?; if this.{} == {} {{ this.unknown_tagged_fields.push(UnknownTaggedField {{ tag, data: raw }}); }} }}",
                lit(&f.rust_name),
                f.rust_name,
                f.rust_name,
                f.default_expr()
            );
        }
        format!(
            "*at = (\"_tagged_fields\", buf.len()); let count = read_unsigned_varint(buf)?; for _ in 0..count {{ let (tag, data) = read_tagged_field(buf)?; match tag {{ {arms} _ => this.unknown_tagged_fields.push(UnknownTaggedField {{ tag, data }}), }} }}"
        )
    };
    match ctx.flexible(s) {
        Cond::Never => {}
        Cond::Always => {
            let _ = writeln!(out, "            {section}");
        }
        Cond::When(c) => {
            let _ = writeln!(out, "            if {c} {{ {section} }}");
        }
    }
    let _ = writeln!(out, "            Ok(this)");
    let _ = writeln!(out, "    }}\n}}\n");
}

/// An expression reading field `f` from `buf` (may be null where `nullable` holds).
fn read_field(f: &Field, nullable: &Cond, compact: &str, tagged: bool) -> String {
    if !f.optional() {
        return read_value(&f.ty, compact);
    }
    let checked = |opt: String| match nullable {
        Cond::Always => opt,
        c => format!("check_decoded_null({opt}, {})?", c.expr()),
    };
    match &f.ty {
        Ty::Str => checked(format!("read_nullable_string(buf, {compact})?")),
        Ty::Bytes | Ty::Records => checked(format!("read_nullable_bytes(buf, {compact})?")),
        Ty::Array(inner) => checked(read_array(inner, compact, true)),
        Ty::Struct(n) => format!(
            "if read_struct_presence(buf, {}, {tagged})? {{ Some({n}::decode(buf, version)?) }} else {{ None }}",
            nullable.expr()
        ),
        _ => unreachable!("only strings, bytes, arrays and structs are nullable"),
    }
}

/// An expression reading an array: of type `Option<Vec<T>>` when
/// `nullable`, else `Vec<T>` (a null is then an error). The loop is written
/// out in place: no closure and no generic helper per array field.
fn read_array(inner: &Ty, compact: &str, nullable: bool) -> String {
    let (some, none) = if nullable {
        ("Some(v)", "None")
    } else {
        ("v", "return Err(DecodeError::UnexpectedNull)")
    };
    format!(
        "match read_array_count(buf, {compact}, {})? {{ Some((n, cap)) => {{ let mut v = ::std::vec::Vec::with_capacity(cap); for _ in 0..n {{ v.push({}); }} {some} }} None => {none}, }}",
        inner.min_size(compact),
        read_value(inner, compact)
    )
}

/// An expression of type `T` reading a non-null value.
fn read_value(ty: &Ty, compact: &str) -> String {
    match ty {
        Ty::Bool => "read_bool(buf)?".into(),
        Ty::I8 => "read_i8(buf)?".into(),
        Ty::I16 => "read_i16(buf)?".into(),
        Ty::U16 => "read_u16(buf)?".into(),
        Ty::I32 => "read_i32(buf)?".into(),
        Ty::U32 => "read_u32(buf)?".into(),
        Ty::I64 => "read_i64(buf)?".into(),
        Ty::F64 => "read_f64(buf)?".into(),
        Ty::Uuid => "read_uuid(buf)?".into(),
        Ty::Str => format!("read_string(buf, {compact})?"),
        Ty::Bytes | Ty::Records => format!("read_bytes(buf, {compact})?"),
        Ty::Struct(n) => format!("{n}::decode(buf, version)?"),
        Ty::Array(inner) => read_array(inner, compact, false),
    }
}
