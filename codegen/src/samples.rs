//! `Sample` impls for the round-trip tests: random values valid for a version.

use std::fmt::Write as _;

use crate::layout::Ctx;
use crate::spec::{snake_case, Cond, Spec, StructDef, Ty};

/// The sample impls for every struct of a spec, as one inline module.
pub fn gen_samples(spec: &Spec, out: &mut String) {
    let ctx = Ctx::new(spec);
    let module = snake_case(&spec.name);
    let _ = writeln!(out, "mod {module} {{");
    let _ = writeln!(out, "    use crate::protocol::messages::{module}::*;");
    let _ = writeln!(
        out,
        "    #[allow(unused_imports)]\n    use crate::protocol::sample::{{Sample, SampleRng}};"
    );
    gen_sample(&ctx, &spec.top, out);
    for s in &spec.structs {
        gen_sample(&ctx, s, out);
    }
    let _ = writeln!(out, "}}");
}

fn gen_sample(ctx: &Ctx, s: &StructDef, out: &mut String) {
    let within = ctx.within(s);
    let _ = writeln!(out, "    impl Sample for {} {{", s.name);
    let _ = writeln!(
        out,
        "        #[allow(unused_variables, clippy::field_reassign_with_default)]"
    );
    let _ = writeln!(
        out,
        "        fn sample(rng: &mut SampleRng, version: i16) -> Self {{"
    );
    let _ = writeln!(out, "            let mut this = Self::default();");
    for f in &s.fields {
        let present = Cond::range(f.versions, within);
        if present == Cond::Never {
            continue;
        }
        let value = if f.optional() {
            let where_present = f.versions.intersect(within);
            match Cond::range(f.nullable, where_present) {
                Cond::Never => format!("Some({})", sample_value(&f.ty)),
                c => format!(
                    "if {} && rng.one_in(4) {{ None }} else {{ Some({}) }}",
                    c.expr(),
                    sample_value(&f.ty)
                ),
            }
        } else {
            sample_value(&f.ty)
        };
        let stmt = format!("this.{} = {value};", f.rust_name);
        match present {
            Cond::When(c) => {
                let _ = writeln!(out, "            if {c} {{ {stmt} }}");
            }
            _ => {
                let _ = writeln!(out, "            {stmt}");
            }
        }
    }
    match Cond::range(ctx.spec.flexible, within) {
        Cond::Never => {}
        Cond::Always => {
            let _ = writeln!(
                out,
                "            this.unknown_tagged_fields = rng.unknown_tagged_fields();"
            );
        }
        Cond::When(c) => {
            let _ = writeln!(
                out,
                "            if {c} {{ this.unknown_tagged_fields = rng.unknown_tagged_fields(); }}"
            );
        }
    }
    let _ = writeln!(out, "            this\n        }}\n    }}\n");
}

fn sample_value(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "rng.bool()".into(),
        Ty::I8 => "rng.next() as i8".into(),
        Ty::I16 => "rng.next() as i16".into(),
        Ty::U16 => "rng.next() as u16".into(),
        Ty::I32 => "rng.next() as i32".into(),
        Ty::U32 => "rng.next() as u32".into(),
        Ty::I64 => "rng.next() as i64".into(),
        Ty::F64 => "rng.f64()".into(),
        Ty::Uuid => "rng.uuid()".into(),
        Ty::Str => "rng.string()".into(),
        Ty::Bytes | Ty::Records => "rng.bytes()".into(),
        Ty::Struct(n) => format!("<{n} as Sample>::sample(rng, version)"),
        Ty::Array(inner) => format!("rng.vec(|rng| {})", sample_value(inner)),
    }
}
