"""Write a `docker save` archive (one image) as an OCI image layout tagged TAG, as the offline
mirror holds images (images/<registry>/<repository>/): what skopeo copy would write, made here
because no registry is reachable. Usage: oci_layout.py ARCHIVE LAYOUT_DIR TAG"""
import hashlib
import json
import os
import shutil
import sys
import tarfile

archive, layout, tag = sys.argv[1:4]
with tarfile.open(archive) as tar:
    image = json.load(tar.extractfile("manifest.json"))[0]
    config = tar.extractfile(image["Config"]).read()
    layers = [tar.extractfile(name).read() for name in image["Layers"]]
shutil.rmtree(layout, ignore_errors=True)
os.makedirs(os.path.join(layout, "blobs", "sha256"))


def blob(data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as handle:
        handle.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)} for layer in layers]}
descriptor = {"mediaType": manifest["mediaType"], **blob(json.dumps(manifest).encode()),
              "annotations": {"org.opencontainers.image.ref.name": tag}}
with open(os.path.join(layout, "index.json"), "w", encoding="utf-8") as handle:
    json.dump({"schemaVersion": 2, "manifests": [descriptor]}, handle)
with open(os.path.join(layout, "oci-layout"), "w", encoding="utf-8") as handle:
    json.dump({"imageLayoutVersion": "1.0.0"}, handle)
print(descriptor["digest"])
