//! The lowered IR written as a float ONNX graph.

use super::graph::{attr_int, attr_ints, attr_string, GraphBuilder};
use super::lower::{Lowered, Op};
use tract_onnx::pb::ModelProto;

/// Writes `l` with input `input_name` and the output `output_name`.
pub fn to_onnx_f32(
    l: &Lowered,
    graph_name: &str,
    input_name: &str,
    output_name: &str,
    metadata: &[(String, String)],
) -> ModelProto {
    let mut g = GraphBuilder::new();
    let mut names: Vec<String> = vec![input_name.to_string()];
    for op in &l.ops {
        let out = match op {
            Op::Conv {
                input,
                weight,
                shape,
                bias,
                stride,
                pad,
                relu,
            } => {
                let w = g.f32s("w", shape, weight);
                let b = g.f32s("b", &[shape[0]], bias);
                let y = g.node(
                    "Conv",
                    &[&names[*input], &w, &b],
                    conv_attrs(shape[2], *stride, *pad),
                    "conv",
                );
                relu_if(&mut g, y, *relu)
            }
            Op::Add { a, b, relu } => {
                let y = g.node("Add", &[&names[*a], &names[*b]], vec![], "add");
                relu_if(&mut g, y, *relu)
            }
            Op::MaxPool {
                input,
                kernel,
                stride,
                pad,
            } => g.node(
                "MaxPool",
                &[&names[*input]],
                conv_attrs(*kernel, *stride, *pad),
                "pool",
            ),
            Op::Upsample2x { input } => upsample(&mut g, &names[*input]),
            Op::Concat { a, b } => g.node(
                "Concat",
                &[&names[*a], &names[*b]],
                vec![attr_int("axis", 1)],
                "cat",
            ),
            Op::GlobalAvgPool { input } => {
                let p = g.node("GlobalAveragePool", &[&names[*input]], vec![], "gap");
                g.node("Flatten", &[&p], vec![attr_int("axis", 1)], "flat")
            }
            Op::Dense {
                input,
                weight,
                shape,
                bias,
                relu,
            } => {
                let w = g.f32s("fc_w", shape, weight);
                let b = g.f32s("fc_b", &[shape[0]], bias);
                let y = g.node(
                    "Gemm",
                    &[&names[*input], &w, &b],
                    vec![attr_int("transB", 1)],
                    "gemm",
                );
                relu_if(&mut g, y, *relu)
            }
        };
        names.push(out);
    }
    g.rename_output(&names[l.output], output_name);
    g.finish(
        graph_name,
        (input_name, &l.input_shape),
        &[(output_name, &l.output_shape)],
        metadata,
    )
}

/// Kernel, stride and symmetric padding: Conv, QLinearConv and MaxPool alike.
pub fn conv_attrs(kernel: i64, stride: i64, pad: i64) -> Vec<tract_onnx::pb::AttributeProto> {
    vec![
        attr_ints("kernel_shape", &[kernel, kernel]),
        attr_ints("strides", &[stride, stride]),
        attr_ints("pads", &[pad, pad, pad, pad]),
    ]
}

pub fn relu_if(g: &mut GraphBuilder, y: String, relu: bool) -> String {
    if relu {
        g.node("Relu", &[&y], vec![], "relu")
    } else {
        y
    }
}

/// torch's nearest upsampling is ONNX Resize with asymmetric coordinates
/// and floor rounding.
pub fn upsample(g: &mut GraphBuilder, input: &str) -> String {
    let scales = g.f32s("scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
    g.node(
        "Resize",
        &[input, "", &scales],
        vec![
            attr_string("mode", "nearest"),
            attr_string("coordinate_transformation_mode", "asymmetric"),
            attr_string("nearest_mode", "floor"),
        ],
        "up",
    )
}
