"""Where int8 time goes under XNNPACK: EEEA-Net-C2 and MobileNetV3-Large (random weights),
224 px, 1 thread, float32 and int8 timed interleaved in one process, int8 also without any
delegate; ``relu6`` rebuilds them with every h-swish as ReLU6 (a different network, the same
op layout otherwise) to show what one XNNPACK partition gives.

    PYTHONPATH=. python benchmarks/int8_xnnpack_partitions.py base 224 eeea_net_c2,mobilenet_v3_large 20
    PYTHONPATH=. python benchmarks/int8_xnnpack_partitions.py relu6 224 eeea_net_c2,mobilenet_v3_large 20
"""
import sys, time, collections, numpy as np
from tfcxr.backend import tf
import tfcxr.models.layers as L
variant, size = sys.argv[1], int(sys.argv[2])
if variant == "relu6":   # every h-swish as ReLU6: the graph XNNPACK takes whole in int8
    L.hard_swish = lambda x: tf.nn.relu6(x)
from tfcxr import models
from tfcxr.export.convert import convert
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs.tflite import TFLiteModel
from ai_edge_litert.interpreter import Interpreter, OpResolverType
spec = PreprocessingSpec(image_size=size)
cal = np.random.default_rng(0).integers(0, 256, (16, size, size, 3)).astype(np.float32)
its = {}
for name in sys.argv[3].split(","):
    net = models.create(name, num_classes=14, input_shape=spec.input_shape)
    for mode in ("float32", "int8"):
        b = convert(net, spec, mode, cal if mode == "int8" else None)
        m = TFLiteModel(b, num_threads=1)
        print(variant, name, mode, m.delegation(), flush=True)
        its[(name, mode, "xnnpack")] = m.interpreter
        if mode == "int8":
            it = Interpreter(model_content=b, num_threads=1,
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            it.allocate_tensors(); its[(name, mode, "no-delegate")] = it
times = collections.defaultdict(list)
for r in range(int(sys.argv[4])):
    for k, it in its.items():
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.full(d["shape"], 128, d["dtype"]))
        t = time.perf_counter(); it.invoke(); times[k].append(time.perf_counter() - t)
for k, v in times.items():
    print(variant, size, *k, f"{1000 * np.median(v):.2f} ms")
